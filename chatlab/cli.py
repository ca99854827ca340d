"""``chatlab``: the one command-line entry point.  Subcommands live in ``chatlab/commands``.

Each command is the module ``chatlab/commands/<name>.py`` (``-`` becomes ``_``) with
``add_arguments(parser)`` and ``main(args) -> int``; its one-line help is in
:data:`COMMANDS`.  Modules are imported only when their command runs, so ``chatlab --help``
stays fast.  Any :class:`~sim.errors.ChatLabError` (a user mistake: bad scenario, unknown
operator, illegal transition ...) is printed as one clear line with exit status 2, never as
a traceback.

Mistakes argparse itself catches (an unknown option, a value that is not a number) are one
line too (:meth:`CommandParser.error`), and so are an ``--out`` directory that cannot be
created (checked before any work: :func:`check_out_dir`) and a
closed pipe (``chatlab db status | head -1``: a quiet exit 141, as a shell would give).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

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


def check_out_dir(option: str, path: Path | None) -> None:
    """Before any work: ``path`` must be a directory, or creatable as one (nothing is left behind).

    An existing file, a path under a file, an unwritable parent or a place where no directory
    can be made (``/proc/x``) is one line naming the option; the probe directory made to find
    out is removed at once.
    """
    if path is None:
        return
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ChatLabError(f"{option}: {path} exists and is a file; expected a directory")
        if not os.access(path, os.W_OK):
            raise ChatLabError(f"{option}: {path} is not writable")
        return
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ChatLabError(f"{option}: cannot create {path}: {probe} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".chatlab-probe-", dir=probe))
    except OSError as exc:
        raise ChatLabError(f"{option}: cannot create a directory in {probe} ({exc.strerror or exc})") from None


def command_module(name: str) -> str:
    """The module of a command: ``compare-real`` -> ``chatlab.commands.compare_real``."""
    return f"chatlab.commands.{name.replace('-', '_')}"


class OneLineErrors:
    """argparse's own errors as one line (``chatlab run: error: ...``), not usage + error, exit 2."""

    def error(self, message: str):  # noqa: ANN201 - never returns
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class CommandParser(OneLineErrors, argparse.ArgumentParser):
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


class TopParser(OneLineErrors, argparse.ArgumentParser):
    """``chatlab`` itself (an unknown command is one line too)."""


def build_parser() -> argparse.ArgumentParser:
    parser = TopParser(
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
            parser.set_defaults(_parser=p)  # extra arguments are reported by the command's parser
            importlib.import_module(command_module(name)).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    try:
        return _main()
    except BrokenPipeError:  # the reader went away (| head): stop quietly, like any Unix tool
        try:  # Python's recipe: point stdout at devnull so the flush at exit cannot fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # no real file descriptor (a test's capture)
            pass
        return 141


def _main() -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args()
        if extra:
            getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version (0) or a one-line usage error (2)
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    if not args.command:
        parser.print_help()
        return 0
    module = importlib.import_module(command_module(args.command))
    try:
        if args.command != "calibrate":  # its --out is a file, checked by the command
            check_out_dir("--out", getattr(args, "out", None))
        return int(module.main(args) or 0)
    except ChatLabError as exc:
        print(f"chatlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"chatlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except OSError as exc:  # a file that could not be written after the checks (disk full, removed dir)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"chatlab {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
