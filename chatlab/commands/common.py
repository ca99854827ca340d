"""Arguments several commands share, declared once so their help cannot drift apart.

Kept free of heavy imports (no pandas, no psycopg): ``chatlab loadtest`` builds its parser
from here too.
"""

from __future__ import annotations

import argparse

from sim.policies import POLICY_NAMES


def add_scenario_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario name (see scenarios/) or path to a .toml file")


def add_policy_argument(parser: argparse.ArgumentParser) -> None:
    """``--policy P``; the valid names come from :data:`sim.policies.POLICY_NAMES`."""
    parser.add_argument("--policy", default=None, metavar="P",
                        help=f"assignment policy (default: the scenario's): {', '.join(POLICY_NAMES)}")
