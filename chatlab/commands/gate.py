"""``chatlab gate TARGET...``: exit 1 if any run breaks a bound; for CI pipelines.

A TARGET is a scenario (name or .toml path: simulated with ``--policy``/``--seed``; with
``--target FILE.toml`` load-tested on that outside system instead) or a report directory /
event-log file (e.g. a load-test result).  Exit status: 0 every bound
holds, 1 some bound fails (each printed PASS/FAIL with value, bound and margin), 2 bad
input (unknown scenario, unreadable log, nonsense bound), printed as one line.

With no TARGET the gate is the repository's: ``[tool.chatlab.gate]`` of ./pyproject.toml
(:mod:`chatlab.gate.config`) gives the targets, policies, seeds, bounds and output files,
and every option given on the command line overrides its key.  To tell "given" from
"default", the options a config can set default to :data:`UNSET`; :func:`_apply_config`
fills them in (command line, else config, else the built-in default).  ``--junit`` and
``--json`` write the result for CI systems (:mod:`chatlab.gate.output`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from chatlab.commands import common

LOG_SUFFIXES = (".parquet", ".csv")
#: Marks an option the command line did not give (so the config's value, if any, applies).
UNSET = object()
#: Options ``[tool.chatlab.gate]`` can set, besides the bounds (``policy`` is its ``policies``).
CONFIG_OPTIONS = ("policy", "seed", "seeds", "duration", "warmup", "junit", "json")


def bound_value(text: str) -> float | None:
    """A bound from the command line: a number, or ``off`` to skip a bound that is on by default."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'off', got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", metavar="TARGET", nargs="*",
                        help="scenario name/.toml (simulated), or report dir / events.parquet / events.csv "
                             "(default: the scenarios of [tool.chatlab.gate] in ./pyproject.toml)")
    common.add_policy_argument(parser, what="policy for simulated targets")
    common.add_simulation_arguments(parser, seed_help="random seed for simulated targets (default: the scenario's)",
                             multi_seed=True,
                             seeds_help="several seeds: N, A-B or a list like 1-5,9; every seed's run must pass")
    b = parser.add_argument_group("bounds (a run passes when every given bound holds)")
    b.add_argument("--max-repeat-rate", type=bound_value, default=0.0, metavar="R",
                   help="max share of assigns that repeat the chat's previous operator (default 0; 'off' to skip)")
    b.add_argument("--max-premature-rate", type=bound_value, default=0.0, metavar="R",
                   help="max share of assigns made from waiting_real_user_reply (default 0; 'off' to skip)")
    b.add_argument("--max-p99-wait", type=bound_value, default=None, metavar="S", help="max p99 wait for assignment, seconds")
    b.add_argument("--min-jain", type=bound_value, default=None, metavar="J",
                   help="min Jain index of assignments per online hour (1 = perfectly fair)")
    b.add_argument("--max-abandonment-rate", type=bound_value, default=None, metavar="R", help="max abandoned / chats")
    b.add_argument("--min-service-level", type=bound_value, default=None, metavar="R",
                   help="min share of waits served within --service-level-t")
    g = parser.add_argument_group("routing guarantees (the bounds of chatlab bugs; metrics.json's guarantees.*)")
    g.add_argument("--max-capacity-overshoot", type=bound_value, default=0.0, metavar="N",
                   help="max assignments that left an operator over max_chats units (default 0; 'off' to skip)")
    g.add_argument("--max-fifo-violations", type=bound_value, default=None, metavar="N",
                   help="max assignments made while an older chat the operator could take waited")
    g.add_argument("--max-unanswered-hold", type=bound_value, default=None, metavar="S",
                   help="max time a chat stays with an operator without a reply, seconds")
    g.add_argument("--max-offline-agent-wait", type=bound_value, default=None, metavar="S",
                   help="max p90 wait of returning chats whose known agent was offline, seconds")
    g.add_argument("--max-peak-share", type=bound_value, default=None, metavar="X",
                   help="max peak share: one operator's share of a 15-min window's assignments x operators online")
    t = parser.add_argument_group("gating a real system (scenario TARGETs are load-tested on it instead of simulated)")
    common.add_target_argument(t)
    t.add_argument("--time-scale", type=float, default=60.0, metavar="K",
                   help="--target: scenario seconds per wall second (default 60)")
    t.add_argument("--run-time", type=float, default=None, metavar="S",
                   help="--target: wall seconds per load test (default: the scenario's duration / K)")
    t.add_argument("--database-url", default=None, metavar="URL",
                   help="--target: PostgreSQL to use (default: $DATABASE_URL, else a temporary embedded server)")
    t.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="--target: where the load tests' reports go (default: reports/<scenario>/gate-<target>)")
    o = parser.add_argument_group("results for CI systems (written on PASS and on FAIL)")
    o.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML: one testcase per run x bound")
    o.add_argument("--json", type=Path, metavar="FILE",
                   help="write JSON: every run x bound with value, bound, margin and passed, and the verdict")
    common.add_metric_arguments(parser)
    common.add_parallel_arguments(parser)
    _defer_defaults(parser)


def _defer_defaults(parser: argparse.ArgumentParser) -> None:
    """Options a config can set default to UNSET; their real defaults are kept in ``gate_defaults``."""
    from chatlab.gate import BOUND_OPTIONS

    dests = (*CONFIG_OPTIONS, *BOUND_OPTIONS)
    parser.set_defaults(gate_defaults={d: parser.get_default(d) for d in dests}, **dict.fromkeys(dests, UNSET))


def is_log_target(text: str) -> bool:
    """A directory or a .parquet/.csv file is read; anything else is a scenario."""
    path = Path(text)
    return path.is_dir() or path.suffix.lower() in LOG_SUFFIXES


def _apply_config(args: argparse.Namespace) -> "GateConfig | None":  # noqa: F821 (lazy import)
    """Fill the UNSET options: the command line, else ``[tool.chatlab.gate]`` (read only when no
    TARGET is given), else the built-in default.  Sets ``args.policies`` (``[None]``: the scenario's)."""
    from chatlab.gate.config import read_gate_config

    given = {d for d in args.gate_defaults if getattr(args, d) is not UNSET}
    config, values = None, {}
    if not args.targets:
        config = read_gate_config(Path("pyproject.toml"))
        args.targets = list(config.scenarios)
        values = {k: v for k, v in {"duration": config.duration, "warmup": config.warmup, "junit": config.junit,
                                    "json": config.json}.items() if v is not None} | config.bounds
        if config.seeds is not None and not {"seed", "seeds"} & given:
            values["seeds"] = config.seeds
    for dest, default in args.gate_defaults.items():
        if dest not in given:
            setattr(args, dest, values.get(dest, default))
    from_config = config is not None and config.policies is not None and "policy" not in given
    args.policies = list(config.policies) if from_config else [args.policy]
    args.gate_given = given
    return config


def _source(config, args: argparse.Namespace, key: str) -> str:  # noqa: ANN001
    """How an error names an option: ``--junit``, or the config key it came from."""
    if config is None or key in args.gate_given:
        return f"--{key}"
    return f"{config.path}: [tool.chatlab.gate] {key}"


def _from_config(config, key: str, given: bool, check):  # noqa: ANN001, ANN202
    """``check()``, its error naming ``pyproject.toml`` and ``key`` when the value came from the config."""
    from sim.errors import ChatLabError

    if config is None or given:
        return check()
    try:
        return check()
    except ChatLabError as exc:
        raise config.error(key, str(exc).removeprefix(f"--{key}: ")) from None


def main(args: argparse.Namespace) -> int:
    from chatlab.gate import BOUND_OPTIONS, evaluate, make_bounds
    from chatlab.gate.output import check_output_paths, write_json, write_junit
    from chatlab.replications import Replication
    from chatlab.report import load_runs

    given_seeds = args.seed is not UNSET or args.seeds is not UNSET
    config = _apply_config(args)
    common.check_metric_arguments(args)
    bounds = make_bounds({name: getattr(args, name) for name in BOUND_OPTIONS})  # config bounds: pre-checked
    _check_policies(args.policies)
    seeds = _from_config(config, "seeds", given_seeds, lambda: common.resolve_seeds(args))
    check_output_paths({_source(config, args, key): getattr(args, key) for key in ("junit", "json")})
    # Resolve every target before running anything: bad input must fail fast with exit 2.
    resolved = []
    for target in args.targets:
        resolved.append(_from_config(config, "scenarios", False, lambda t=target: _resolve(args, t)))
    if args.target is not None:
        if args.policies != [None]:
            raise common.UsageError("--policy (or policies of [tool.chatlab.gate]): with --target the target's own "
                                    "assign function runs; drop it")
        if args.duration is not None:
            raise common.UsageError("--duration: with --target use --run-time (wall seconds) and --time-scale")
        for kind, value in resolved:  # every load test planned (validated) before the first starts
            if kind == "scenario":
                _plan(args, value, seeds[0])
    if config is not None:
        print(f"gate of {config.path} [tool.chatlab.gate]: {', '.join(args.targets)}")
    runs = []
    for kind, value in resolved:
        if kind == "log":
            for run in load_runs(Path(value), service_level_t=args.service_level_t, stuck_after=args.stuck_after):
                seed = run.metrics["run"]["seed"]
                tag = run.label if seed is None else f"{run.label}, seed {seed}"
                runs.append(dataclasses.replace(run, label=f"{value} [{tag}]"))
        elif args.target is not None:
            for seed in seeds:
                runs.append(_load_test(args, value, seed))
        else:
            reps = [Replication(value, policy, seed, policy or value.policy.name, args.service_level_t,
                                args.stuck_after) for policy in args.policies for seed in seeds]
            for run in common.replicate(args, reps, f"gate {value.name}"):
                info = run.metrics["run"]
                runs.append(dataclasses.replace(run, label=f"{info['scenario']} [{run.label}, seed {info['seed']}]"))
    result = evaluate(runs, bounds)
    *checks, verdict = result.lines()
    for line in checks:
        print(line)
    for option, path, write in (("JUnit XML", args.junit, write_junit), ("JSON", args.json, write_json)):
        if path is not None:
            print(f"{option} written to {write(result, Path(path))}")
    print(verdict)
    if args.target is not None:
        print(f"gated on target {args.target}: the scenario targets were load-tested on it (reports in "
              f"{args.out or 'reports/<scenario>/gate-<target>'})")
    return result.exit_code


def _check_policies(policies: list[str | None]) -> None:
    from sim.policies import make_policy

    for policy in policies:
        if policy is not None:
            make_policy(policy)


def _resolve(args: argparse.Namespace, target: str) -> tuple[str, object]:
    """("log", path) for a report dir / event log (checked readable), else ("scenario", the Scenario)."""
    from chatlab.report import find_logs

    if is_log_target(target):
        find_logs(Path(target))
        return ("log", target)
    if Path(target).is_file() and Path(target).suffix.lower() != ".toml":
        raise common.UsageError(f"TARGET {target}: expected a scenario (a name or a .toml file), a report "
                                "directory, or an event log (events.parquet / events.csv)")
    return ("scenario", common.load_scenario_arg(target, args.duration, common.scenario_overrides(args)))


def _plan(args: argparse.Namespace, scenario, seed):  # noqa: ANN001, ANN202
    from loadtest.settings import plan
    from loadtest.target import load_target

    name = load_target(args.target).name
    seed = scenario.seed if seed is None else seed
    out = args.out / f"{scenario.name}-seed{seed}" if args.out is not None else \
        common.default_out(scenario.name, f"gate-{name}-seed{seed}")
    return plan(str(scenario.source) if str(scenario.source).endswith(".toml") else scenario.name,
                time_scale=args.time_scale, run_time_s=args.run_time, seed=seed, out_dir=out,
                database_url=args.database_url, target=args.target, overrides=common.scenario_overrides(args) or None)


def _load_test(args: argparse.Namespace, scenario, seed):  # noqa: ANN001, ANN202
    """One load test of ``scenario`` on ``--target``, analysed like any run (its report written too)."""
    from chatlab.metrics import analyse
    from chatlab.report import write_loadtest_report
    from loadtest.session import run_load_test

    settings = _plan(args, scenario, seed)
    bar, tick = common.wall_clock_bar(settings.run_time_wall_s, f"load test {settings.policy}",
                                      disable=args.no_progress)
    try:
        outcome = run_load_test(settings, on_tick=tick)
    finally:
        bar.close()
    run = analyse(outcome.log, label=f"db:{settings.policy}", service_level_t=args.service_level_t,
                  stuck_after=args.stuck_after)
    write_loadtest_report(run, Path(settings.out_dir), outcome.results())
    return dataclasses.replace(run, label=f"{scenario.name} [{run.label}, seed {settings.seed}]")
