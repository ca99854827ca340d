"""The pieces several commands share, defined once: arguments, their checks, output paths, progress bars.

Why one home: the same option must mean the same thing (and have the same help) in every
command, and the policy list comes from :data:`sim.policies.POLICY_NAMES` only.  Everything a
user types here (seed ranges, ``--set`` overrides, durations) is validated, and a mistake
raises :class:`UsageError` naming what was wrong.  Kept free of heavy imports at module level
(no pandas, no psycopg): every command builds its parser from here.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.errors import ChatLabError
from sim.policies import POLICY_NAMES

#: Every policy, comma-separated: the default of ``compare --policies``.
ALL_POLICIES = ",".join(POLICY_NAMES)


class UsageError(ChatLabError):
    """A command-line value that cannot be used (bad seed range, bad --set, bad duration)."""


#: The largest seed (numpy's seeds are unsigned 32-bit words; the lab keeps every seed in one).
MAX_SEED = 2**32 - 1


def seed_value(text: str) -> int:
    """``--seed N``: an integer 0..:data:`MAX_SEED` (argparse turns the error into one line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer 0..{MAX_SEED}, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer 0..{MAX_SEED}, got {text!r}")
    return value


# --------------------------------------------------------------------------- arguments


def add_scenario_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario name (see scenarios/) or path to a .toml file")


def add_policy_argument(parser: argparse.ArgumentParser, *, what: str = "assignment policy") -> None:
    """``--policy P``; the valid names come from :data:`sim.policies.POLICY_NAMES`."""
    parser.add_argument("--policy", default=None, metavar="P",
                        help=f"{what} (default: the scenario's): {', '.join(POLICY_NAMES)}")


def add_policies_argument(parser: argparse.ArgumentParser, *, default: str) -> None:
    """``--policies A,B,C``; the valid names come from :data:`sim.policies.POLICY_NAMES`."""
    parser.add_argument("--policies", "--policy", dest="policies", default=default, metavar="A,B,C",
                        help=f"comma-separated policies (default: {default}); any of {ALL_POLICIES}")


def add_out_argument(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help=f"report directory (default: {default})")


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_metric_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every reporting command shares."""
    from chatlab.metrics.runlog import DEFAULT_SERVICE_LEVEL_T  # pandas: only for commands that report

    parser.add_argument("--service-level-t", type=float, default=DEFAULT_SERVICE_LEVEL_T, metavar="S",
                        help="service-level threshold T in seconds (default %(default)s)")
    parser.add_argument("--stuck-after", type=float, default=None, metavar="S",
                        help="an assigned chat older than this is stuck (default: the scenario's, else 3600 s)")


def add_simulation_arguments(parser: argparse.ArgumentParser, *, seed_help: str = "random seed (default: the scenario's)",
                             multi_seed: bool = False,
                             seeds_help: str = "several seeds: N, A-B or a list like 1-5,9 (every run is repeated "
                                               "per seed; tables show the mean ± its 95 % confidence interval)") -> None:
    parser.add_argument("--seed", type=seed_value, default=None, metavar="N", help=seed_help)
    add_set_argument(parser)
    if multi_seed:
        parser.add_argument("--seeds", default=None, metavar="SEEDS", help=seeds_help)
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="simulate only this many scenario seconds (default: the scenario's duration)")
    add_warmup_argument(parser)
    add_progress_argument(parser)


def add_warmup_argument(parser: argparse.ArgumentParser) -> None:
    """``--warmup S|auto``: the scenario's ``warmup`` field for this run (seconds left out of every metric)."""
    parser.add_argument("--warmup", default=None, metavar="S|auto",
                        help="leave the first S scenario seconds out of every metric, or 'auto' to choose them per "
                             "run by MSER-5 (default: the scenario's warmup field, else 0)")


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set FIELD=VALUE`` (repeatable): one scenario field changed for this run (``sweep`` takes lists)."""
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a scenario field for this run, e.g. operators.count=4 (repeatable)")


def _scalar(text: str) -> Any:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_set(text: str) -> tuple[str, list[Any]]:
    """``"operators.count=3,4,5"`` -> ("operators.count", [3, 4, 5])."""
    if "=" not in text:
        raise UsageError(f"--set {text!r}: expected FIELD=VALUE[,VALUE...], e.g. operators.count=3,4,5")
    field, values = text.split("=", 1)
    field = field.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", field):
        raise UsageError(f"--set {text!r}: {field!r} is not a field path like operators.count")
    items = [_scalar(v) for v in values.split(",") if v.strip()]
    if not items:
        raise UsageError(f"--set {text!r}: no value after '='")
    return field, items


def set_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--set FIELD=VALUE`` options as overrides for :meth:`Scenario.with_overrides` (one value each)."""
    out: dict[str, Any] = {}
    for text in getattr(args, "sets", None) or []:
        field, items = parse_set(text)
        if len(items) != 1:
            raise UsageError(f"--set {text!r}: expected one value (only chatlab sweep takes a list)")
        if field in out:
            raise UsageError(f"--set given twice for {field}")
        out[field] = items[0]
    return out


def scenario_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Every scenario field the command line changes: ``--set`` ones, then ``--warmup``."""
    return {**set_overrides(args), **warmup_overrides(args)}


def warmup_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``{"warmup": value}`` for :meth:`Scenario.with_overrides` when ``--warmup`` was given (else {})."""
    text = getattr(args, "warmup", None)
    if text is None:
        return {}
    if str(text).strip().lower() == "auto":
        return {"warmup": "auto"}
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(f"--warmup: expected a number of seconds >= 0 or 'auto', got {text!r}")
    return {"warmup": value}


def add_parallel_arguments(parser: argparse.ArgumentParser) -> None:
    """``--jobs N`` / ``--dask ADDRESS``: where replications run (results identical either way)."""
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="worker processes for the replications (default: every core); results are identical "
                             "for any N")
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help="run the replications on a Dask distributed cluster (scheduler address, e.g. "
                             "tcp://10.0.0.5:8786) instead of local processes")


def replicate(args: argparse.Namespace, reps: list, desc: str) -> list:
    """Run replications as ``--jobs``/``--dask`` say, with a progress bar; results in the order given."""
    from chatlab.replications import check_jobs, run_replications

    jobs = check_jobs(getattr(args, "jobs", None))
    with progress_bar(len(reps), desc, disable=getattr(args, "no_progress", False)) as bar:
        def done(i: int, rep: Any) -> None:
            bar.set_postfix_str(rep.label if rep.seed is None else f"{rep.label} seed {rep.seed}")
            bar.update()

        return run_replications(reps, jobs=jobs, dask=getattr(args, "dask", None), on_done=done)


def add_loadtest_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of a load test (``chatlab loadtest`` and ``chatlab compare-real``)."""
    parser.add_argument("--time-scale", type=float, default=60.0, metavar="K",
                        help="scenario seconds per wall second (default 60: a simulated hour in a minute)")
    parser.add_argument("--run-time", type=float, default=None, metavar="S",
                        help="wall seconds to run (default: the scenario's duration / K); "
                             "the scenario window covered is S x K")
    parser.add_argument("--users", type=int, default=None, metavar="N",
                        help="at most N concurrent simulated real users (default: sized from the arrival "
                             "rate by Little's law); operators and the housekeeping job come on top")
    parser.add_argument("--seed", type=seed_value, default=None, metavar="N", help="random seed (default: the scenario's)")
    add_set_argument(parser)
    parser.add_argument("--database-url", default=None, metavar="URL",
                        help="PostgreSQL to use (default: $DATABASE_URL, else a temporary embedded server)")
    parser.add_argument("--keep-schema", action="store_true",
                        help="keep the run's schema afterwards (default: dropped); useful with a database "
                             "URL only: a temporary server is deleted anyway")
    add_warmup_argument(parser)
    add_target_argument(parser)
    add_progress_argument(parser)


def add_target_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=None, metavar="FILE.toml",
                        help="load-test an outside system instead of the lab's SQL: a target file mapping each flow "
                             "to its own SQL call (loadtest/targets/: lab, seed_fix, seed_prefix, or your file)")


def check_metric_arguments(args: argparse.Namespace) -> None:
    if not (args.service_level_t >= 0):
        raise UsageError(f"--service-level-t must be >= 0 seconds, got {args.service_level_t:g}")
    if args.stuck_after is not None and not (args.stuck_after > 0):
        raise UsageError(f"--stuck-after must be > 0 seconds, got {args.stuck_after:g}")


# --------------------------------------------------------------------------- values


def parse_seeds(text: str) -> list[int]:
    """``"1-5"`` -> [1..5]; ``"1,3,9"``; ``"1-3,10"``.  Order kept, repeats dropped."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        m = re.fullmatch(r"(-?\d+)(?:\s*-\s*(-?\d+))?", part)
        if not m:
            raise UsageError(f"--seeds: cannot read {part!r}; expected N, A-B or a comma list like 1-5,9")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise UsageError(f"--seeds: range {part!r} is empty (end before start)")
        if hi - lo > 10_000:
            raise UsageError(f"--seeds: range {part!r} is too large (more than 10000 seeds)")
        if lo < 0 or hi > MAX_SEED:
            raise UsageError(f"--seeds: {part!r} is out of range; seeds are integers 0..{MAX_SEED}")
        seeds.extend(range(lo, hi + 1))
    return list(dict.fromkeys(seeds))


def resolve_seeds(args: argparse.Namespace) -> list[int | None]:
    """The seeds a command runs: ``--seeds`` (a list), else ``[--seed]`` (``None`` = the scenario's)."""
    seeds_text = getattr(args, "seeds", None)
    if seeds_text is not None:
        if args.seed is not None:
            raise UsageError("give either --seed or --seeds, not both")
        return list(parse_seeds(seeds_text))
    return [args.seed]


def load_scenario_arg(name_or_path: str, duration: float | None = None, warmup: dict[str, Any] | None = None) -> Any:
    """The scenario a command runs, shortened (or lengthened) to ``--duration`` when given, with the
    command line's overrides (``--set``, ``--warmup``: :func:`scenario_overrides`)."""
    from sim.scenario import load_scenario

    from sim.scenario.reader import MAX_DURATION_S

    if duration is not None and not (0 < duration <= MAX_DURATION_S):
        raise UsageError(f"--duration: expected seconds > 0 and at most {MAX_DURATION_S:,.0f} (one year), "
                         f"got {duration:g}")
    scenario = load_scenario(name_or_path)
    if warmup:  # --set / --warmup first: a bad value there is named even when --duration replaces it
        scenario = scenario.with_overrides(dict(warmup))
    if duration is None:
        return scenario
    return scenario.with_overrides({"duration": float(duration)})  # a warm-up too long for it: named


def default_out(scenario: str, *parts: str) -> Path:
    """``reports/<scenario>/<parts...>`` with file-system-safe names."""
    safe = [re.sub(r"[^A-Za-z0-9._=,-]+", "_", str(p)).strip("_") or "x" for p in (Path(scenario).stem, *parts)]
    return Path("reports").joinpath(*safe)


def loadtest_settings(args: argparse.Namespace, *, policy: str | None, out: Path | None) -> Any:
    """The validated :class:`loadtest.settings.LoadTestSettings` of parsed load-test arguments."""
    from loadtest.settings import plan

    return plan(args.scenario, policy=policy, time_scale=args.time_scale, run_time_s=args.run_time,
                users=args.users, seed=args.seed, out_dir=out, database_url=args.database_url,
                keep_schema=args.keep_schema, web=getattr(args, "web", False), web_port=getattr(args, "web_port", 8089),
                expect_workers=getattr(args, "expect_workers", 0), local_workers=getattr(args, "local_workers", 0),
                master_bind_host=getattr(args, "master_bind_host", "127.0.0.1"),
                master_port=getattr(args, "master_port", 5557), target=getattr(args, "target", None),
                overrides=scenario_overrides(args) or None)


# --------------------------------------------------------------------------- progress


def progress_bar(total: int, desc: str, *, disable: bool = False, unit: str = "run") -> Any:
    """A tqdm bar on stderr (hidden when ``disable`` or when there is nothing to count)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disable or total <= 0, leave=False)


def wall_clock_bar(total_s: float, desc: str, *, disable: bool) -> tuple[Any, Callable[[float], None]]:
    """A bar over wall seconds (a load test), and the ``on_tick(elapsed)`` callback that advances it."""
    bar = progress_bar(int(round(total_s)), desc, disable=disable, unit="s")

    def tick(elapsed: float) -> None:
        bar.n = min(int(elapsed), bar.total)
        bar.refresh()

    return bar, tick
