"""`chatlab compare-real`: not built yet (see the open issues)."""

from __future__ import annotations

import argparse

from sim.statemachine import ChatLabError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace) -> int:
    raise ChatLabError("'compare-real' is not implemented yet")
