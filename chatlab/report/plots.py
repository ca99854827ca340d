"""PNG plots for reports: one function per figure, each taking analysed runs (one or many).

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas directly, so no
GUI backend or global ``pyplot`` state is involved (safe in CI, threads and notebooks).
Every plot has a title, axis labels with units and a legend when it shows several runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from chatlab.metrics import ALL_STATES, OPEN_STATES, Analysis, ci_half_width, gini, lorenz_curve, wait_cdf
from chatlab.report.plot_data import MAX_BARS, operator_view, queue_bins

#: File name -> plotting function, in the order reports show them.
PLOT_FILES: dict[str, str] = {
    "lorenz": "lorenz.png",
    "utilisation": "utilisation.png",
    "operator_assignments": "operator_assignments.png",
    "wait_cdf": "wait_cdf.png",
    "queue_length": "queue_length.png",
    "state_occupancy": "state_occupancy.png",
    "repeat_assignments": "repeat_assignments.png",
    "key_metrics": "key_metrics.png",
}

_STATE_COLOURS = {
    "waiting_assignment": "#d62728",
    "assigned": "#1f77b4",
    "waiting_real_user_reply": "#2ca02c",
    "completed": "#7f7f7f",
}


def _figure(width: float = 8.0, height: float = 5.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _time_unit(duration: float) -> tuple[float, str]:
    """Hours for runs of two hours or more, minutes otherwise (readable axis ticks)."""
    return (3600.0, "h") if duration >= 7200 else (60.0, "min")


def _title_suffix(runs: Sequence[Analysis]) -> str:
    scenario = runs[0].metrics["run"].get("scenario") if runs else None
    return f" — {scenario}" if scenario else ""


def _several(runs: Sequence[Analysis]) -> dict[str, Any] | None:
    """A legend only when there is more than one run to tell apart."""
    return {"fontsize": "small", "ncols": min(4, len(runs))} if len(runs) > 1 else None


def _panels(n: int) -> tuple[Figure, np.ndarray]:
    """One panel per run (two columns for several), shared axes; spare panels hidden and the
    x tick labels shown on the panel above a hidden one (sharex hides inner ones)."""
    cols = 1 if n <= 1 else 2
    rows = (max(1, n) + cols - 1) // cols
    fig = _figure(9.0 if cols == 1 else 12.0, 4.5 if n <= 1 else 1.2 + 2.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for k in range(n, rows * cols):
        axes.flat[k].set_visible(False)
        if k - cols >= 0:
            axes.flat[k - cols].xaxis.set_tick_params(labelbottom=True)
    return fig, axes


def _finish(ax: Any, runs: Sequence[Analysis], title: str, xlabel: str, ylabel: str, *,
            legend: dict[str, Any] | None, grid: str = "both") -> None:
    """Every plot's labels: axis titles with units, the title with the scenario, legend, grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title + _title_suffix(runs))
    if legend is not None:
        ax.legend(**legend)
    ax.grid(axis=grid, alpha=0.3)


def plot_lorenz(runs: Sequence[Analysis], path: Path) -> Path:
    """Lorenz curve of assignments over operators, one line per run, plus the equality line."""
    fig = _figure(6.5, 6.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="perfect equality")
    for run in runs:
        values = run.per_operator["assignments"].to_numpy(dtype="float64")
        x, y = lorenz_curve(values)
        g = gini(values)  # of the plotted counts (pooled over seeds for a multi-seed column)
        ax.plot(x, y, marker="o" if len(values) <= MAX_BARS else None, markersize=3, label=f"{run.label} (Gini {g:.3f})" if g is not None else run.label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _finish(ax, runs, "Lorenz curve of assignments per operator",
            "cumulative share of operators (fewest assignments first)", "cumulative share of assignments",
            legend={"loc": "upper left", "fontsize": "small"})
    return _save(fig, path)


def plot_utilisation(runs: Sequence[Analysis], path: Path) -> Path:
    """Each operator's utilisation (time holding a chat / online time) as a dot, per group and run,
    with the group's mean as a bar: readable at any floor size, and groups are compared within."""
    groups = list(dict.fromkeys(g for run in runs for g in run.per_operator["group"]))
    fig = _figure(max(7.0, 1.6 * len(groups) * max(1, len(runs)) ** 0.5 + 3), 5.0)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(runs))
    rng = np.random.default_rng(0)  # jitter only: the same picture every time
    for i, run in enumerate(runs):
        po = run.per_operator.loc[run.per_operator["online_s"] > 0]
        offset = (i - (len(runs) - 1) / 2) * width
        colour, label = f"C{i % 10}", run.label
        for k, group in enumerate(groups):
            values = po.loc[po["group"] == group, "utilisation"].to_numpy(dtype=float)
            if not len(values):
                continue
            jitter = rng.uniform(-0.3, 0.3, len(values)) * width
            ax.scatter(k + offset + jitter, values, s=10, alpha=0.6, color=colour, label=label)
            label = None  # one legend entry per run
            ax.hlines(values.mean(), k + offset - width / 2.5, k + offset + width / 2.5, color=colour, linewidth=2)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylim(0, 1.05)
    _finish(ax, runs, "Utilisation per operator, by group (bar: the group's mean)", "operator group",
            "utilisation (time holding a chat / online time)", legend=_several(runs), grid="y")
    return _save(fig, path)


def plot_operator_assignments(runs: Sequence[Analysis], path: Path) -> Path:
    """Assignments per operator: grouped bars (one colour per run) for up to ``MAX_BARS`` operators,
    else each run's counts sorted from most to fewest as a curve (500 bars are unreadable and slow;
    the curve's shape shows how evenly work is spread), see :func:`chatlab.report.plot_data.operator_view`."""
    view = operator_view(runs)
    if view.kind == "sorted":
        fig = _figure(9.0, 5.0)
        ax = fig.add_subplot()
        for run in runs:
            counts = view.counts[run.label]
            ax.plot(view.x, counts, drawstyle="steps-mid", linewidth=1.5,
                    label=f"{run.label} (mean {counts.mean():.1f})")
        ax.set_xlim(0.5, len(view.x) + 0.5)
        ax.set_ylim(bottom=0)
        _finish(ax, runs, f"Assignments per operator, sorted ({len(view.x)} operators)",
                "operator rank (most assignments first)", "assignments (count)",
                legend={"fontsize": "small", "ncols": min(2, len(runs))})
        return _save(fig, path)
    ops = view.x
    fig = _figure(max(8.0, 0.35 * len(ops) * max(1, len(runs)) ** 0.5 + 4), 5.0)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(ops))
    for i, run in enumerate(runs):
        ax.bar(x + (i - (len(runs) - 1) / 2) * width, view.counts[run.label], width, label=run.label)
    ax.set_xticks(x, [str(o) for o in ops], fontsize="small", rotation=90 if len(ops) > 20 else 0)
    _finish(ax, runs, "Assignments per operator", "operator id", "assignments (count)",
            legend=_several(runs), grid="y")
    return _save(fig, path)


def plot_wait_cdf(runs: Sequence[Analysis], path: Path) -> Path:
    """Empirical CDF of served waits for assignment, with the service-level threshold T."""
    fig = _figure()
    ax = fig.add_subplot()
    longest = 0.0
    for run in runs:
        x, y = wait_cdf(run.waits)
        if len(x):
            ax.step(np.concatenate([[0.0], x]), np.concatenate([[0.0], y]), where="post", label=f"{run.label} (n={len(x)})")
            longest = max(longest, float(x[-1]))
        else:
            ax.plot([], [], label=f"{run.label} (no served waits)")
    t = runs[0].metrics["params"]["service_level_t_s"] if runs else None
    if t is not None:
        ax.axvline(t, color="black", linestyle=":", linewidth=1, label=f"service level T = {t:g} s")
    medians = [float(np.median(wait_cdf(r.waits)[0])) for r in runs if len(wait_cdf(r.waits)[0])]
    if medians and longest > 100 * max(max(medians), 1.0):  # long tail: keep the body readable
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0.0)  # waits are never negative (symlog would show a mirrored empty half)
    _finish(ax, runs, "Wait-time CDF (served waits; censored waits excluded)",
            "wait for assignment (s)" if ax.get_xscale() == "linear" else "wait for assignment (s, symlog scale)",
            "share of served waits ≤ x", legend={"fontsize": "small", "loc": "lower right"})
    return _save(fig, path)


def plot_queue_length(runs: Sequence[Analysis], path: Path) -> Path:
    """Chats waiting for assignment over scenario time, one panel per run on shared axes: the
    time-weighted mean per time bin as a line, the bin's maximum as a light band
    (:func:`chatlab.report.plot_data.queue_bins`, 50-100 bins of a round width whatever the
    run's length).  Every step of seven runs over hours on one axis was an unreadable barcode."""
    duration = max((r.metrics["run"]["duration_s"] for r in runs), default=0.0)
    scale, unit = _time_unit(duration)
    fig, axes = _panels(len(runs))
    width = None
    for i, (ax, run) in enumerate(zip(axes.flat, runs)):
        bins = queue_bins(run.queue, float(run.metrics["run"]["duration_s"]))
        mean = run.metrics["health"].get("queue_mean")
        ax.set_title(run.label + (f" (mean {mean:.2f})" if mean is not None else ""), fontsize="medium")
        ax.grid(alpha=0.3)
        if not len(bins):
            continue
        width = float(bins["end"].iloc[0] - bins["start"].iloc[0])
        edges = np.append(bins["start"].to_numpy(), bins["end"].iloc[-1]) / scale
        ax.stairs(bins["max"].to_numpy(), edges, fill=True, color=f"C{i % 10}", alpha=0.25, label="max in bin")
        ax.stairs(bins["mean"].to_numpy(), edges, color=f"C{i % 10}", linewidth=1.8, label="time-weighted mean in bin")
    axes.flat[0].set_ylim(bottom=0)
    axes.flat[0].legend(loc="best", fontsize="small")
    fig.supxlabel(f"scenario time ({unit})")
    fig.supylabel("chats waiting for assignment")
    per = "" if width is None else f" per {width / 60:g} min bin" if width >= 60 else f" per {width:g} s bin"
    fig.suptitle("Queue length over time" + per + _title_suffix(runs))
    return _save(fig, path)


def plot_state_occupancy(runs: Sequence[Analysis], path: Path) -> Path:
    """Chats in each open state over time, stacked; one panel per run (shared axes)."""
    duration = max((r.metrics["run"]["duration_s"] for r in runs), default=0.0)
    scale, unit = _time_unit(duration)
    fig, axes = _panels(len(runs))
    for ax, run in zip(axes.flat, runs):
        counts = run.state_counts
        t = counts["time"].to_numpy() / scale
        ys = [counts[s].to_numpy(dtype=float) for s in OPEN_STATES]
        ax.stackplot(t, *ys, step="post", labels=list(OPEN_STATES),
                     colors=[_STATE_COLOURS[s] for s in OPEN_STATES], alpha=0.8)
        ax.set_title(run.label, fontsize="medium")
        ax.grid(alpha=0.3)
    fig.supxlabel(f"scenario time ({unit})")
    fig.supylabel("open chats")
    axes.flat[0].legend(loc="upper left", fontsize="small")
    fig.suptitle("Open chats by state over time" + _title_suffix(runs))
    assert set(OPEN_STATES) < set(ALL_STATES)
    return _save(fig, path)


def plot_repeat_assignments(runs: Sequence[Analysis], path: Path) -> Path:
    """Repeat and premature assignments per run (the bug the seed fixes), as counts."""
    fig = _figure(max(6.0, 1.2 * len(runs) + 3), 4.5)
    ax = fig.add_subplot()
    x = np.arange(len(runs))
    repeat = [r.metrics["assignment"]["repeat"] for r in runs]
    premature = [r.metrics["assignment"]["premature"] for r in runs]
    b1 = ax.bar(x - 0.2, repeat, 0.4, label="repeat (same operator again)", color="#d62728")
    b2 = ax.bar(x + 0.2, premature, 0.4, label="premature (from waiting_real_user_reply)", color="#ff7f0e")
    for bars, runs_vals in ((b1, repeat), (b2, premature)):
        ax.bar_label(bars, labels=[str(v) for v in runs_vals], fontsize="small")
    ax.set_xticks(x, [r.label for r in runs], rotation=20 if len(runs) > 3 else 0, ha="right" if len(runs) > 3 else "center")
    _finish(ax, runs, "Repeat and premature assignments", "policy / run", "assignments (count)",
            legend={"fontsize": "small"}, grid="y")
    return _save(fig, path)


PLOTTERS: dict[str, Callable[[Sequence[Analysis], Path], Path]] = {
    "lorenz": plot_lorenz,
    "utilisation": plot_utilisation,
    "operator_assignments": plot_operator_assignments,
    "wait_cdf": plot_wait_cdf,
    "queue_length": plot_queue_length,
    "state_occupancy": plot_state_occupancy,
    "repeat_assignments": plot_repeat_assignments,
    "key_metrics": None,  # set below (defined after this table's users)
}


def write_plots(runs: Sequence[Analysis], out_dir: Path) -> list[Path]:
    """Write every report plot for these runs into ``out_dir``; return the paths."""
    return [PLOTTERS[name](runs, Path(out_dir) / filename) for name, filename in PLOT_FILES.items()]


#: (metric key, panel title with unit, scale factor) of the key-metrics figure
KEY_PANELS: tuple[tuple[str, str, float], ...] = (
    ("wait.mean_s", "mean wait (s)", 1.0), ("wait.p90_s", "p90 wait (s)", 1.0),
    ("assignment.repeat_rate", "repeat rate (%)", 100.0),
    ("fairness.assignments_per_online_hour.jain", "Jain, assignments per online h", 1.0),
)


def plot_key_metrics(runs: Sequence[Analysis], path: Path) -> Path:
    """A bar per run for a few key metrics; a run pooled over seeds gets its 95 % confidence interval
    as an error bar (so two policies are told apart by more than their means)."""
    from chatlab.metrics import get_metric

    fig = _figure(3.2 * len(KEY_PANELS), 4.2)
    axes = fig.subplots(1, len(KEY_PANELS), squeeze=False)[0]
    labels = [r.label for r in runs]
    pos = np.arange(len(runs))
    for ax, (key, title, scale) in zip(axes, KEY_PANELS):
        means, halves = [], []
        for run in runs:
            try:
                value = get_metric(run.metrics, key)
            except KeyError:
                value = None
            half = None
            if run.interval is not None:
                try:
                    half = get_metric(run.interval, key)
                except KeyError:
                    half = None
            means.append(np.nan if value is None else float(value) * scale)
            halves.append(0.0 if half is None else float(half) * scale)
        ax.bar(pos, means, yerr=halves if any(halves) else None, capsize=4, color="#1f77b4", alpha=0.8)
        ax.set_xticks(pos, labels, rotation=30 if len(runs) > 3 else 0, ha="right" if len(runs) > 3 else "center",
                      fontsize="small")
        ax.set_title(title, fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
    several = any(r.interval is not None for r in runs)
    fig.suptitle("Key metrics" + _title_suffix(runs) + (" (mean ± 95 % CI over seeds)" if several else ""))
    return _save(fig, path)


PLOTTERS["key_metrics"] = plot_key_metrics


def plot_sweep(table: pd.DataFrame, path: Path, *, x: str, metrics: Sequence[tuple[str, str]],
               group: str = "policy", title: str = "Sweep") -> Path:
    """Mean ± 95 % confidence interval over seeds of a few metrics against the swept parameter,
    one line per group (the interval bars: Student t half-widths, :func:`chatlab.metrics.pooling.ci_half_width`).

    ``table`` has one row per run with columns ``x``, ``group`` and the metric columns;
    ``metrics`` pairs a column with its axis label (with units).
    """
    n = len(metrics)
    fig = _figure(5.0 * n, 4.5)
    axes = fig.subplots(1, n, squeeze=False)[0]
    categorical = not pd.api.types.is_numeric_dtype(table[x])
    xs = list(dict.fromkeys(table[x])) if categorical else sorted(table[x].unique())
    for ax, (column, ylabel) in zip(axes, metrics):
        for name, part in table.groupby(group, sort=False):
            values = pd.to_numeric(part[column], errors="coerce")
            grouped = values.groupby(part[x])
            means = grouped.mean().reindex(xs)
            half = grouped.agg(lambda v: ci_half_width(v.dropna()) or 0.0).reindex(xs)
            pos = np.arange(len(xs)) if categorical else np.asarray(xs, dtype=float)
            ax.errorbar(pos, means, yerr=half.fillna(0.0), marker="o", capsize=3, label=str(name))
        if categorical:
            ax.set_xticks(np.arange(len(xs)), [str(v) for v in xs], rotation=20, ha="right")
        elif len(xs) <= 12:
            ax.set_xticks(np.asarray(xs, dtype=float), [f"{v:g}" for v in xs])
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel.split(" (")[0])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"{title} (mean ± 95 % CI over seeds)")
    return _save(fig, path)
