"""``chatlab``: the one command-line entry point.  Subcommands live in ``chatlab/commands``.

Each command is the module ``chatlab/commands/<name>.py`` (``-`` becomes ``_``) with
``add_arguments(parser)`` and ``main(args) -> int``; its one-line help is in
:data:`COMMANDS`.  Modules are imported only when their command runs, so ``chatlab --help``
stays fast.  Any :class:`~sim.errors.ChatLabError` (a user mistake: bad scenario, unknown
operator, illegal transition ...) is printed as one clear line with exit status 2, never as
a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sim.errors import ChatLabError

#: command name -> its one-line help (here, so ``chatlab --help`` imports no command module).
COMMANDS: dict[str, str] = {
    "run": "Simulate one scenario with one policy and write a report.",
    "compare": "Simulate one scenario under several policies side by side.",
    "sweep": "Simulate a scenario over a grid of parameters, seeds and policies.",
    "gate": "Exit 1 if a run breaks a bound (repeat rate, p99 wait, Jain index): for CI.",
    "staff": "The fewest operators per interval that meet a service level: Erlang A, then simulated.",
    "bugs": "Reproduce real products' reported routing bugs with buggy variants; show the lab is free of them.",
    "db": "Manage the PostgreSQL server and schema: up, migrate, verify, status, url, down, export.",
    "loadtest": "Run the Locust suite against the real database for a scenario.",
    "compare-real": "Run simulation and load test on one scenario and compare them.",
    "replay": "Apply a simulation event log to the database and report disagreements.",
    "calibrate": "Fit a scenario of your floor from its history (the seed's tables, in PostgreSQL or CSV).",
    "report": "Rebuild a report (tables, metrics.json, plots) from a saved event log.",
}


def command_module(name: str) -> str:
    """The module of a command: ``compare-real`` -> ``chatlab.commands.compare_real``."""
    return f"chatlab.commands.{name.replace('-', '_')}"


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser that lets positionals follow options (``chatlab db export --schema S DIR``).

    argparse matches positionals in contiguous runs, so an optional positional after an
    option would be "unrecognized"; ``parse_known_intermixed_args`` is argparse's own fix (it
    calls back into ``parse_known_args``, hence the re-entry guard).
    """

    _mixing = False

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201
        if self._mixing:
            return super().parse_known_args(args, namespace)
        self._mixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._mixing = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatlab",
        description="Simulate, load-test and gate live-chat assignment policies.",
    )
    from chatlab import __version__

    parser.add_argument("--version", action="version", version=f"chatlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    chosen = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    for name, help_line in COMMANDS.items():
        p = sub.add_parser(name, help=help_line, description=help_line)
        # Only the chosen command's module is imported (it may pull in pandas, psycopg ...).
        if name == chosen:
            importlib.import_module(command_module(name)).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    parser = build_parser()
    args = parser.parse_args()
    if not args.command:
        parser.print_help()
        return 0
    module = importlib.import_module(command_module(args.command))
    try:
        return int(module.main(args) or 0)
    except ChatLabError as exc:
        print(f"chatlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"chatlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
