"""Every metric on small hand-built event logs whose answers were worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatlab import metrics as M
from sim.errors import InvalidEventLog
from sim.eventlog import from_records

W, A, R, C = "waiting_assignment", "assigned", "waiting_real_user_reply", "completed"


class LogBuilder:
    """Write chat stories tersely; from_state is tracked so the rows are consistent."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.state: dict[int, str | None] = {}

    def _chat(self, t: float, chat: int, event: str, to: str, op: int | None = None, reason: str | None = None) -> "LogBuilder":
        self.rows.append((float(t), chat, op, event, self.state.get(chat), to, reason))
        self.state[chat] = to
        return self

    def new(self, t: float, chat: int) -> "LogBuilder":
        return self._chat(t, chat, "user_message", W)

    def user(self, t: float, chat: int) -> "LogBuilder":
        to = A if self.state[chat] == A else W
        return self._chat(t, chat, "user_message", to)

    def assign(self, t: float, chat: int, op: int) -> "LogBuilder":
        return self._chat(t, chat, "assign", A, op)

    def reply(self, t: float, chat: int, op: int) -> "LogBuilder":
        return self._chat(t, chat, "operator_reply", R, op)

    def release(self, t: float, chat: int, op: int | None, event: str = "idle_release") -> "LogBuilder":
        return self._chat(t, chat, event, W, op)

    def end(self, t: float, chat: int, reason: str = "resolved") -> "LogBuilder":
        return self._chat(t, chat, "end", C, None, reason)

    def op(self, t: float, op: int, event: str) -> "LogBuilder":
        self.rows.append((float(t), None, op, event, None, None, None))
        return self

    def log(self, **attrs: object) -> pd.DataFrame:
        return from_records(self.rows, attrs)


def served_chats(counts: dict[int, int], *, gap: float = 10.0) -> LogBuilder:
    """Operator -> number of chats, each served (new, assign, reply, end), one after another."""
    b, t, chat = LogBuilder(), 0.0, 0
    for op, n in counts.items():
        for _ in range(n):
            chat += 1
            b.new(t, chat).assign(t + 1, chat, op).reply(t + 2, chat, op).end(t + 3, chat)
            t += gap
    return b


# ----------------------------------------------------------------- fairness indices


def test_perfectly_even_distribution() -> None:
    log = served_chats({1: 3, 2: 3, 3: 3, 4: 3}).log(duration=200.0)
    f = M.compute_metrics(log)["fairness"]
    for dist in ("assignments", "replies", "assignments_per_online_hour"):
        assert f[dist]["gini"] == pytest.approx(0.0, abs=1e-12)
        assert f[dist]["jain"] == pytest.approx(1.0)
        assert f[dist]["cv"] == pytest.approx(0.0, abs=1e-12)
        assert f[dist]["max_min_ratio"] == pytest.approx(1.0)
    assert f["assignments"]["total"] == 12 and f["operators"] == 4


def test_one_operator_does_everything() -> None:
    n = 4
    log = served_chats({2: 8}).log(duration=100.0, operators=[1, 2, 3, 4])
    f = M.compute_metrics(log)["fairness"]["assignments"]
    assert f["n"] == n
    assert f["gini"] == pytest.approx((n - 1) / n)
    assert f["jain"] == pytest.approx(1 / n)
    assert f["max_min_ratio"] is None  # min is 0: unbounded, reported as null
    assert f["cv"] == pytest.approx(math.sqrt(n - 1))  # values (8,0,0,0): std = 8*sqrt(3)/4, mean 2


def test_index_functions_on_known_values() -> None:
    # values 1, 2, 3: sum |xi-xj| over ordered pairs = 8; Gini = 8 / (2 * 9 * 2) = 2/9
    assert M.gini([1, 2, 3]) == pytest.approx(2 / 9)
    assert M.jain([1, 2, 3]) == pytest.approx(36 / (3 * 14))
    assert M.coefficient_of_variation([1, 2, 3]) == pytest.approx(math.sqrt(2 / 3) / 2)
    assert M.max_min_ratio([1, 2, 3]) == pytest.approx(3.0)
    assert M.gini([]) is None and M.jain([0, 0]) is None and M.coefficient_of_variation([0]) is None
    with pytest.raises(ValueError):
        M.gini([1, -1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=30))
def test_indices_stay_in_their_bounds(values: list[int]) -> None:
    n = len(values)
    if sum(values) == 0:
        assert M.gini(values) is None and M.jain(values) is None
        return
    assert -1e-12 <= M.gini(values) <= (n - 1) / n + 1e-12
    assert 1 / n - 1e-12 <= M.jain(values) <= 1 + 1e-12


def test_lorenz_curve_of_even_and_concentrated() -> None:
    x, y = M.lorenz_curve([5, 5])
    assert list(x) == [0.0, 0.5, 1.0] and list(y) == [0.0, 0.5, 1.0]
    _, y = M.lorenz_curve([0, 0, 9])
    assert list(y) == [0.0, 0.0, 0.0, 1.0]


# ----------------------------------------------------------------- time weighting


def test_half_time_operator_with_half_the_chats_is_fair() -> None:
    b = LogBuilder()
    b.op(0.0, 1, "operator_online")
    b.op(3600.0, 2, "operator_online")  # operator 2 works only the second hour
    t = 0.0
    for chat in range(1, 11):  # operator 1: 10 chats over two hours
        b.new(t, chat).assign(t + 1, chat, 1).reply(t + 2, chat, 1).end(t + 3, chat)
        t += 700.0
    for chat in range(11, 16):  # operator 2: 5 chats in its one hour
        s = 3600.0 + (chat - 11) * 600.0
        b.new(s, chat).assign(s + 1, chat, 2).reply(s + 2, chat, 2).end(s + 3, chat)
    log = b.log(duration=7200.0)
    po = M.per_operator(log).set_index("operator_id")
    assert po.loc[1, "online_h"] == pytest.approx(2.0) and po.loc[2, "online_h"] == pytest.approx(1.0)
    assert po.loc[1, "assignments_per_online_hour"] == pytest.approx(5.0)
    assert po.loc[2, "assignments_per_online_hour"] == pytest.approx(5.0)
    f = M.compute_metrics(log)["fairness"]
    assert f["assignments"]["jain"] == pytest.approx(225 / (2 * (100 + 25)))  # raw counts look unfair
    assert f["assignments_per_online_hour"]["gini"] == pytest.approx(0.0, abs=1e-12)
    assert f["assignments_per_online_hour"]["jain"] == pytest.approx(1.0)


def test_online_intervals_rules() -> None:
    b = LogBuilder()
    b.op(100.0, 1, "operator_offline")  # no online first: online from 0
    b.op(200.0, 2, "operator_online")  # never offline: online until duration
    b.op(300.0, 2, "operator_offline").op(400.0, 2, "operator_online")
    b.op(10.0, 3, "operator_idle")  # neither event in a log with presence rows: never online
    iv = M.online_intervals(b.log(duration=1000.0))
    assert iv[1] == [(0.0, 100.0)]
    assert iv[2] == [(200.0, 300.0), (400.0, 1000.0)]
    assert iv[3] == []


# ----------------------------------------------------------------- waits


def test_known_wait_sequence_gives_known_percentiles() -> None:
    b = LogBuilder()
    for i in range(1, 101):  # chat i waits exactly i seconds
        start = i * 1000.0
        b.new(start, i).assign(start + i, i, 1 + i % 3)
    b.new(200_000.0, 500).end(200_500.0, 500, "abandoned")  # censored: ended in the queue after 500 s
    b.new(200_900.0, 501)  # censored: still waiting at the end (100 s > T)
    log = b.log(duration=201_000.0)
    w = M.compute_metrics(log, service_level_t=60.0)["wait"]
    assert w["served"] == 100 and w["waits"] == 102
    assert w["mean_s"] == pytest.approx(50.5)
    assert w["p50_s"] == pytest.approx(50.5)
    assert w["p90_s"] == pytest.approx(90.1)  # 1 + 0.90 * 99
    assert w["p99_s"] == pytest.approx(99.01)  # 1 + 0.99 * 99
    assert w["max_s"] == 100.0  # censored 500 s wait is not in the served stats
    assert w["served_within_t"] == 60
    assert w["service_level_served_only"] == pytest.approx(0.60)
    assert w["service_level"] == pytest.approx(60 / 102)  # ended and open-past-T count as misses
    assert (w["censored"], w["censored_ended"], w["censored_open"]) == (2, 1, 1)
    assert w["censored_max_s"] == 500.0 and w["censored_mean_s"] == pytest.approx(300.0)
    assert w["abandoned"] == 1 and w["abandonment_rate"] == pytest.approx(1 / 102)


def test_waits_start_on_new_chat_user_reply_and_release() -> None:
    b = LogBuilder()
    b.new(0, 1).user(5, 1)  # a second message while queued does not start a new wait
    b.assign(10, 1, 1).reply(20, 1, 1).user(50, 1)  # user reply: wait starts at 50
    b.assign(80, 1, 2).release(100, 1, 2)  # release: wait starts at 100
    b.assign(130, 1, 3).end(140, 1)
    waits = M.wait_episodes(b.log(duration=200.0))
    assert list(waits["start"]) == [0.0, 50.0, 100.0]
    assert list(waits["wait_s"]) == [10.0, 30.0, 30.0]
    assert list(waits["operator_id"]) == [1, 2, 3]
    assert set(waits["outcome"]) == {"served"}


def test_open_wait_shorter_than_t_is_not_counted_in_service_level() -> None:
    b = LogBuilder().new(0, 1).assign(100, 1, 1).new(200, 3).assign(230, 3, 2).new(990, 2)
    w = M.compute_metrics(b.log(duration=1000.0), service_level_t=60.0)["wait"]
    # served: 100 s (miss) and 30 s (hit); the 10 s open wait may still make it: not counted
    assert w["service_level"] == pytest.approx(1 / 2)
    assert w["censored_open"] == 1


# ----------------------------------------------------------------- repeat and premature


def test_repeats_and_premature_assignments_counted() -> None:
    b = LogBuilder()
    # chat 1, legacy-style: op 1 answers and immediately gets the same chat back (premature + repeat)
    b.new(0, 1).assign(1, 1, 1).reply(2, 1, 1).assign(3, 1, 1)
    # chat 2: user answers, op 1 again after op 2 -> not a repeat; then op 1 again -> repeat
    b.new(10, 2).assign(11, 2, 2).reply(12, 2, 2).user(13, 2).assign(14, 2, 1)
    b.reply(15, 2, 1).user(16, 2).assign(17, 2, 1)
    # chat 3: premature to a different operator: premature, not a repeat
    b.new(20, 3).assign(21, 3, 1).reply(22, 3, 1).assign(23, 3, 2)
    log = b.log(duration=30.0)
    a = M.compute_metrics(log)["assignment"]
    assert a["total"] == 7  # 2 + 3 + 2
    assert a["repeat"] == 2 and a["repeat_rate"] == pytest.approx(2 / 7)
    assert a["premature"] == 2 and a["premature_rate"] == pytest.approx(2 / 7)
    po = M.per_operator(log).set_index("operator_id")
    assert po.loc[1, "repeat_assignments"] == 2 and po.loc[2, "premature_assignments"] == 1


def test_the_fix_shape_has_no_repeats_or_premature() -> None:
    b = LogBuilder()
    for chat in range(1, 5):
        s = chat * 100.0
        b.new(s, chat).assign(s + 1, chat, 1).reply(s + 2, chat, 1).user(s + 10, chat)
        b.assign(s + 11, chat, 2).reply(s + 12, chat, 2).end(s + 20, chat)
    a = M.compute_metrics(b.log(duration=1000.0))["assignment"]
    assert (a["repeat"], a["premature"], a["repeat_rate"]) == (0, 0, 0.0)


# ----------------------------------------------------------------- health


def test_stuck_chats_default_and_custom_threshold() -> None:
    b = LogBuilder()
    b.new(0, 1).assign(0, 1, 1).user(1000, 1).release(4000, 1, 1, "stuck_release")  # 4000 s assigned
    b.new(0, 2).assign(100, 2, 2).reply(2100, 2, 2)  # 2000 s
    b.new(0, 3).assign(5000, 3, 1)  # 4000 s to the end of the run, still open
    log = b.log(duration=9000.0)
    h = M.compute_metrics(log)["health"]
    assert h["stuck_after_s"] == 3600.0
    assert (h["stuck_chats"], h["stuck_episodes"], h["stuck_open_at_end"], h["stuck_releases"]) == (2, 2, 1, 1)
    h = M.compute_metrics(log, stuck_after=1500)["health"]
    assert (h["stuck_chats"], h["stuck_open_at_end"]) == (3, 1)
    log.attrs["stuck_after"] = 5000.0
    assert M.compute_metrics(log)["health"]["stuck_chats"] == 0


def test_idle_false_positives_with_ground_truth() -> None:
    b = LogBuilder()
    b.op(50, 1, "operator_idle").op(500, 1, "operator_active")
    b.new(0, 1).assign(10, 1, 1).release(100, 1, 1)  # op 1 idle at 100: true positive
    b.new(0, 2).assign(20, 2, 2).release(200, 2, 2)  # op 2 never idle: false positive
    b.new(0, 3).assign(600, 3, 1).release(700, 3, None)  # op 1 active again (operator taken from the assign)
    log = b.log(duration=1000.0)
    idle = M.idle_releases(log)
    assert list(idle["operator_id"]) == [1, 2, 1]
    assert list(idle["false_positive"]) == [False, True, True]
    h = M.compute_metrics(log)["health"]
    assert h["idle_ground_truth"] is True
    assert (h["idle_releases"], h["idle_false_positives"]) == (3, 2)
    assert h["idle_false_positive_rate"] == pytest.approx(2 / 3)


def test_idle_release_of_offline_operator_is_not_a_false_positive() -> None:
    b = LogBuilder()
    b.op(0, 2, "operator_active")  # ground truth exists in the log
    b.new(0, 1).assign(10, 1, 1).op(50, 1, "operator_offline").release(100, 1, 1)
    assert M.compute_metrics(b.log(duration=200.0))["health"]["idle_false_positives"] == 0


def test_idle_release_from_waiting_for_user_is_always_false_positive() -> None:
    rows = [(0.0, 1, None, "user_message", None, W, None), (1.0, 1, 1, "assign", W, A, None),
            (2.0, 1, 1, "operator_reply", A, R, None), (3.0, 1, 1, "idle_release", R, W, None)]
    h = M.compute_metrics(from_records(rows, {"duration": 10.0}))["health"]
    assert h["idle_ground_truth"] is False
    assert h["idle_false_positives"] == 1


def test_queue_length_series_and_occupancy() -> None:
    b = LogBuilder()
    b.new(0, 1).new(10, 2).assign(20, 1, 1).assign(40, 2, 2).reply(60, 1, 1).end(80, 1)
    log = b.log(duration=100.0)
    q = M.queue_length_series(log)
    assert list(zip(q["time"], q["queue_length"])) == [(0.0, 1), (10.0, 2), (20.0, 1), (40.0, 0), (60.0, 0),
                                                        (80.0, 0), (100.0, 0)]
    h = M.compute_metrics(log)["health"]
    # area: 1*10 + 2*10 + 1*20 = 50 over 100 s
    assert h["queue_mean"] == pytest.approx(0.5) and h["queue_max"] == 2 and h["queue_final"] == 0
    occ = M.state_occupancy(log)
    # waiting: 20 + 30; assigned: chat1 20..60 + chat2 40..100; wrur: chat1 60..80
    assert occ.loc[W, "seconds"] == 50.0 and occ.loc[A, "seconds"] == 100.0 and occ.loc[R, "seconds"] == 20.0
    assert occ["share"].sum() == pytest.approx(1.0)
    counts = M.state_counts_series(log).set_index("time")
    assert counts.loc[80.0, C] == 1 and counts.loc[80.0, A] == 1


def test_per_hour_buckets() -> None:
    b = LogBuilder()
    b.new(100, 1).assign(130, 1, 1)  # hour 0, wait 30
    b.new(3700, 2).assign(3790, 2, 2).new(3800, 3).assign(3810, 3, 1)  # hour 1: waits 90, 10
    ph = M.per_hour(b.log(duration=7200.0))
    assert list(ph["hour"]) == [0, 1]
    assert list(ph["new_chats"]) == [1, 2] and list(ph["assignments"]) == [1, 2]
    assert ph.loc[1, "wait_mean_s"] == pytest.approx(50.0)
    assert ph.loc[1, "service_level_served_only"] == pytest.approx(0.5)
    assert ph.loc[0, "operators_online_mean"] == pytest.approx(2.0)


# ----------------------------------------------------------------- the dict


def test_metrics_are_strict_json_with_the_documented_keys() -> None:
    log = served_chats({1: 2, 2: 1}).log(duration=100.0, scenario="hand", policy="exclude_last", seed=3)
    m = M.compute_metrics(log)
    text = json.dumps(m, allow_nan=False)
    assert list(M.flatten_metrics(json.loads(text)).keys()) == M.documented_keys()
    assert m["run"]["scenario"] == "hand" and m["run"]["seed"] == 3 and m["run"]["duration_s"] == 100.0


def test_empty_log_gives_nulls_not_errors() -> None:
    m = M.compute_metrics(from_records([], {"duration": 60.0}))
    json.dumps(m, allow_nan=False)
    assert m["wait"]["p99_s"] is None and m["fairness"]["assignments"]["jain"] is None
    assert m["assignment"]["repeat_rate"] is None


def test_bad_input_raises_a_user_error() -> None:
    with pytest.raises(InvalidEventLog):
        M.compute_metrics(pd.DataFrame({"time": [1.0]}))
    with pytest.raises(InvalidEventLog):
        M.compute_metrics("not a frame")  # type: ignore[arg-type]


def test_unsorted_input_is_sorted_and_input_not_mutated() -> None:
    log = LogBuilder().new(0, 1).assign(10, 1, 1).log(duration=20.0)
    shuffled = log.iloc[::-1].reset_index(drop=True)
    shuffled.attrs = dict(log.attrs)
    before = shuffled.copy()
    assert M.compute_metrics(shuffled)["wait"]["mean_s"] == 10.0
    pd.testing.assert_frame_equal(shuffled, before)


def test_time_weighted_step_mean() -> None:
    assert M.step_mean(np.array([0.0, 10.0]), np.array([2.0, 4.0]), 0.0, 20.0) == pytest.approx(3.0)
    assert M.step_mean(np.array([0.0, 10.0]), np.array([2.0, 4.0]), 5.0, 15.0) == pytest.approx(3.0)


def test_readme_key_table_lists_every_documented_key() -> None:
    table = M.metric_docs_markdown().splitlines()
    assert table[:2] == ["| key | meaning |", "|---|---|"] and len(table) == 2 + len(M.METRIC_DOCS)
    assert all(f"| `{key}` |" in M.metric_docs_markdown() for key in M.METRIC_DOCS)


def test_an_operator_the_log_never_logs_in_was_never_online() -> None:
    """issue 12's defect: an operator whose shift starts after the window has no online time
    (it used to count as online for the whole run, with 0 assignments: 'unfair')."""
    b = LogBuilder()
    b.op(0.0, 1, "operator_online")
    b.new(10.0, 1).assign(11.0, 1, 1).reply(20.0, 1, 1).end(30.0, 1)
    log = b.log(duration=3600.0, operators=[1, 2])  # operator 2: declared, never logged in
    po = M.per_operator(log).set_index("operator_id")
    assert po.loc[1, "online_h"] == pytest.approx(1.0) and po.loc[2, "online_h"] == 0.0
    fairness = M.compute_metrics(log)["fairness"]["assignments_per_online_hour"]
    assert fairness["n"] == 1 and fairness["jain"] == pytest.approx(1.0)
    # a log with no presence rows at all (hand-made): everyone is online the whole run
    bare = LogBuilder()
    bare.new(10.0, 1).assign(11.0, 1, 1)
    assert M.per_operator(bare.log(duration=3600.0, operators=[1, 2]))["online_h"].tolist() == [1.0, 1.0]

