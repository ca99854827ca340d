"""Every number the lab reports, computed from one thing: the tidy event log (``sim/eventlog.py``).

One job per module: ``runlog`` (the log as the metrics read it: run window, operators,
JSON-safe facts), ``fairness`` (Gini, Jain, ...), ``episodes`` (online intervals, waits,
state stays, queue length, idle releases), ``tables`` (per operator, per hour), ``schema``
(the ``metrics.json`` keys and their documentation), ``analysis`` (:func:`compute_metrics`,
:class:`Analysis`), ``pooling`` (several seeds as one column), ``agreement`` (simulation vs
database).  The public names all import from ``chatlab.metrics``.

The same functions serve a simulated run and a log rebuilt from PostgreSQL's history, so a
difference between the two is a difference in behaviour, never in bookkeeping.  Every
function here is pure: it reads the log (and its ``attrs``) and returns numbers or frames.

Definitions (also in the README, "Metrics and reports"):

* **Run window** ``[0, duration]`` where ``duration = attrs["duration"]`` (falls back to the
  time of the last event).  **Metrics window** ``[W, duration]``, ``W = attrs["warmup"]``
  (0 without a warm-up; ``"auto"``: MSER-5, ``warmup``): every metric counts the events at
  ``t >= W`` — assignments, replies, ends, releases, waits that *start* there, chats that
  open there — and clips online time, state stays and the queue to the window; a chat or
  hold in progress at ``W`` counts for occupancy and utilisation from ``W`` on, never as a
  new wait or assignment.  A repeat assignment still looks back before ``W``.
* **Operators** are every operator id seen in the log, plus those declared in
  ``attrs["operators"]`` (an operator who never got a chat still counts against fairness).
* **Online time**: ``operator_online`` / ``operator_offline`` events bound each operator's
  online intervals (log-ins at shift starts, log-outs at shift ends and by idle detection).
  An operator whose first such event is ``operator_offline`` was online from 0; one left
  online is online until ``duration``; one with neither event was never online — unless the
  log has no such events at all (a hand-made log without presence), where everyone is
  online the whole run.
* **Utilisation** of an operator: the time it held at least one chat (``assigned``) over its
  online time.
* **Fairness indices** of non-negative values x_1..x_n (mean m):
  Gini = sum_ij |x_i - x_j| / (2 n^2 m) (0 = equal, (n-1)/n = one takes all);
  Jain = (sum x)^2 / (n sum x^2) (1 = equal, 1/n = one takes all);
  CV = population standard deviation / mean; max/min ratio (null when min is 0).
  All are null when there is nothing to distribute (no operators or all values 0).
  The *weighted* variants use each operator's count per online hour, over the operators
  that were online at all, so a half-time operator with half the chats is perfectly fair.
* **Wait**: starts on a row whose ``to_state`` is ``waiting_assignment`` and whose
  ``from_state`` is anything else (a new chat has no from_state; a user reply; a release)
  and is *served* by the chat's next row that leaves ``waiting_assignment`` if that row is
  an ``assign``.  A wait that ends any other way (``end``: abandonment or closure while
  queued) or is still open at ``duration`` is *censored*: it is reported separately, never
  mixed into the percentiles.  Percentiles use linear interpolation (numpy's default).
* **Service level** (threshold T, default 60 s): served waits with wait <= T divided by all
  waits whose outcome relative to T is known (served + ended in the queue + still open but
  already longer than T).  ``service_level_served_only`` divides by served waits only.
* **Abandonment rate**: ``end`` rows with reason ``abandoned`` / chats in the log.
* **Repeat assignment**: an ``assign`` whose operator equals the operator of the same
  chat's previous ``assign``.  **Premature assignment**: an ``assign`` whose
  ``from_state`` is ``waiting_real_user_reply`` (nothing to answer).  Rates are per assign.
* **Stuck**: an ``assigned`` episode (entering ``assigned`` until leaving it, or ``duration``)
  longer than ``stuck_after`` seconds (default ``attrs["stuck_after"]``, else 3600).
* **Idle false positive**: an ``idle_release`` from ``waiting_real_user_reply``, or, when the
  log has ground truth (any ``operator_idle``/``operator_active`` row), an ``idle_release``
  at a moment its operator was neither idle (an ``operator_idle`` not yet followed by
  ``operator_active``) nor offline.
* **Queue length**: chats in ``waiting_assignment`` (a step function of time).
* **State occupancy**: chat-seconds spent in each open state (``completed`` is terminal and
  not counted) and each state's share of the total.
"""

from __future__ import annotations

from chatlab.metrics.agreement import AGREEMENT_KEYS, TOLERANCE, Pair, agreement, relative_difference, within
from chatlab.metrics.analysis import Analysis, analyse, compute_metrics, default_label
from chatlab.metrics.episodes import (
    WAIT_COLUMNS,
    assignments,
    idle_releases,
    online_intervals,
    percentile,
    queue_length_series,
    state_counts_series,
    state_intervals,
    state_occupancy,
    step_mean,
    wait_cdf,
    wait_episodes,
    wait_summary,
)
from chatlab.metrics.fairness import coefficient_of_variation, fairness_summary, gini, jain, lorenz_curve, max_min_ratio
from chatlab.metrics.pooling import CONFIDENCE, ci_half_width, pool
from chatlab.metrics.runlog import (
    ALL_STATES,
    DEFAULT_SERVICE_LEVEL_T,
    DEFAULT_STUCK_AFTER,
    OPEN_STATES,
    declared_operators,
    jsonable,
    operator_ids,
    prepare,
    run_duration,
    run_info,
    stuck_threshold,
    window_start,
)
from chatlab.metrics.schema import (
    FAIRNESS_DISTRIBUTIONS,
    METRIC_DOCS,
    SCHEMA_VERSION,
    documented_keys,
    flatten_metrics,
    get_metric,
    metric_docs_markdown,
    metric_keys,
)
from chatlab.metrics.tables import PER_OPERATOR_COLUMNS, per_hour, per_operator
from chatlab.metrics.warmup import mser5_warmup, mser_cut, resolve_warmup
from sim.errors import InvalidEventLog
from sim.eventlog import COLUMNS

__all__ = [
    "COLUMNS", "SCHEMA_VERSION", "DEFAULT_SERVICE_LEVEL_T", "DEFAULT_STUCK_AFTER", "OPEN_STATES", "ALL_STATES",
    "InvalidEventLog", "jsonable", "prepare", "run_duration", "operator_ids", "declared_operators", "stuck_threshold",
    "gini", "jain", "coefficient_of_variation", "max_min_ratio", "fairness_summary", "lorenz_curve",
    "online_intervals", "assignments", "wait_episodes", "percentile", "wait_summary", "wait_cdf", "WAIT_COLUMNS",
    "state_intervals", "state_occupancy", "state_counts_series", "queue_length_series", "step_mean",
    "idle_releases", "per_operator", "per_hour", "PER_OPERATOR_COLUMNS", "run_info", "compute_metrics",
    "flatten_metrics", "metric_keys", "get_metric", "metric_docs_markdown", "Analysis", "analyse", "default_label",
    "METRIC_DOCS", "documented_keys", "FAIRNESS_DISTRIBUTIONS", "pool", "ci_half_width", "CONFIDENCE", "Pair", "relative_difference",
    "agreement", "within", "AGREEMENT_KEYS", "TOLERANCE",
    "window_start", "mser_cut", "mser5_warmup", "resolve_warmup",
]
