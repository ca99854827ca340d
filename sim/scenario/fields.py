"""One line per scenario field for the README's format table (a test keeps them in step)."""

from __future__ import annotations

#: One line per field for the README's scenario format table: field -> (type/default, meaning).
FIELD_DOCS: dict[str, tuple[str, str]] = {
    "name": ("string, default: file name", "scenario name in reports"),
    "description": ("string", "what the scenario is for"),
    "duration": ("number > 0, at most 1 year (31,536,000) (required)", "simulated seconds"),
    "seed": ("integer 0..4294967295, default 0", "default random seed"),
    "warmup": ("number >= 0 and < duration, or \"auto\"; default 0", "first seconds left out of every metric; auto: chosen per run by MSER-5"),
    "users.arrivals.kind": ("poisson, curve or trace", "inferred from rate / points / path when omitted"),
    "users.arrivals.rate": ("number >= 0; rate x scale at most 1,000", "poisson: chats per second"),
    "users.arrivals.points": ("[[t, rate], ...]", "curve: chats/s at time t, linear in between, flat outside"),
    "users.arrivals.path": ("string", "trace: UTF-8 CSV (a byte-order mark is fine) with a 'time' column (s, in increasing order, at least one row) and optional 'exchanges'"),
    "users.arrivals.scale": ("number >= 0, default 1", "load factor applied to rate / points"),
    "users.think_time": ("distribution, default exponential mean 30", "user's time to answer an operator reply (s)"),
    "users.exchanges": ("distribution with mean >= 1, default 3", "operator replies before the user ends the chat (rounded, >= 1)"),
    "users.topics": ("array of tables, optional", "what chats are about; without it every chat is one topic, 'general'"),
    "users.topics[].name": ("letters, digits, _ or - (required)", "the topic's name in reports and metrics.json"),
    "users.topics[].share": ("0..1 (required; shares sum to 1)", "its share of the arrivals"),
    "users.topics[].skill": ("a skill some group has, optional", "only operators with it take the chat (see policy.relax_after)"),
    "users.topics[].priority": ("integer 0..1000, default 0", "the chat's class: higher is served first"),
    "users.topics[].weight": ("integer 1..100, default 1", "capacity by weight: units of an operator's max_chats one chat takes"),
    "users.topics[].think_time": ("distribution, optional", "this topic's users' think time (default: users.think_time)"),
    "users.topics[].exchanges": ("distribution, optional", "this topic's exchanges (default: users.exchanges)"),
    "users.topics[].patience": ("distribution or inf, optional", "this topic's patience (default: users.patience)"),
    "users.patience": ("distribution or inf, default inf", "a user still queued this long after writing gives up (s)"),
    "users.returning": ("0..1, default 0", "share of new chats opened by a user who chatted before (uniformly one of them): known agents"),
    "operators.count": ("integer 1..100,000 (required)", "number of operators (ids 1..count; shifts use 0-based indexes)"),
    "operators.max_chats": ("integer >= 1, default 1", "chats an operator may hold at once"),
    "operators.handle_time": ("distribution, default exponential mean 60", "time to write one reply (s)"),
    "operators.unassign_probability": ("0..1, default 0", "per handled message: hand the chat back instead"),
    "operators.idle_probability": ("0..1, default 0", "per handled message: stop responding first"),
    "operators.idle_duration": ("distribution, default 600", "how long an idle operator stays silent (s)"),
    "operators.tabs": ("integer 1..100, default 1", "concurrent assignment requests each operator's client makes (browser tabs); simulated ones ask in turn, so only the database can race"),
    "operators.groups": ("array of tables, optional", "operators who are alike; with groups, the fields above are the floor's defaults and count/shifts belong to the groups"),
    "operators.groups[].name": ("letters, digits, _ or - (required)", "the group's name in reports and metrics.json"),
    "operators.groups[].count": ("integer >= 1 (required); all groups at most 100,000", "operators in the group (ids continue from the previous group)"),
    "operators.groups[].max_chats": ("integer >= 1, default: the floor's", "chats each may hold at once"),
    "operators.groups[].handle_time": ("distribution, default: the floor's", "time to write one reply (s)"),
    "operators.groups[].speed": ("number > 0, instead of handle_time", "the floor's handle time divided by this factor"),
    "operators.groups[].skills": ("list of names, default []", "the topics' skills these operators have"),
    "operators.groups[].shifts": ("array of tables as operators.shifts", "on-shift windows; indexes within the group"),
    "operators.groups[].unassign_probability": ("0..1, default: the floor's", "per message: hand the chat back instead"),
    "operators.groups[].idle_probability": ("0..1, default: the floor's", "per message: stop responding first"),
    "operators.groups[].idle_duration": ("distribution, default: the floor's", "how long a silence lasts (s)"),
    "operators.shifts": ("array of tables: start, end, operators (list) or count", "on-shift windows; operators in no shift work all run"),
    "policy.name": ("policy name, default exclude_last", "default policy (chatlab --policy overrides)"),
    "policy.mode": ("pull or push, default pull", "operators ask / waiting chats are offered to free operators"),
    "policy.fallback_after": ("number >= 0, default 300", "exclude_last_fallback's T (s)"),
    "policy.poll_interval": ("number >= 0.01, default 5", "how often an operator with a free slot asks again; push: re-dispatch period (s)"),
    "policy.relax_after": ("number >= 0, optional", "skill relaxation: a chat queued this long may go to any operator (s)"),
    "policy.order": ("priority or sla, default priority", "queue order: class then waiting time, or SLA deadline"),
    "policy.sla_targets": ("table: class = seconds", "order = sla: deadline = waiting since + the class's target"),
    "policy.sticky_for": ("number >= 0, optional", "known agent: a returning user's new chat is held this long for the operator of their previous chat, while online with room (s)"),
    "policy.fair_limit": ("integer >= 1, optional", "fair distribution: at most this many assignments per operator per fair_window"),
    "policy.fair_window": ("number > 0, default 3600", "the fair limit's window (s)"),
    "policy.salt": ("integer >= 0, optional", "random policy: fixed salt (default: a seeded salt per request)"),
    "jobs.idle_detection_interval": ("0 or a number >= 0.01, default 60", "s between idle-detection runs (0 = off)"),
    "jobs.idle_after": ("number > 0, default 300", "silence after which an operator is idle (s)"),
    "jobs.stuck_check_interval": ("0 or a number >= 0.01, default 300", "s between stuck-chat releases (0 = off)"),
    "jobs.stuck_after": ("number > 0, default 1800", "assigned this long = stuck (s)"),
    "jobs.reassign_after": ("number > 0, optional", "no-answer timeout: a chat its operator has not answered this long after assignment goes back to the queue, that operator excluded (s)"),
    "jobs.reassign_check_interval": ("number >= 0.01, default 10", "s between no-answer checks (with reassign_after)"),
}


def field_docs_markdown() -> str:
    """The README's scenario format table, generated from :data:`FIELD_DOCS` so they cannot drift."""
    lines = ["| field | type, default | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {kind.replace('|', '/')} | {meaning.replace('|', '/')} |"
              for name, (kind, meaning) in FIELD_DOCS.items()]
    return "\n".join(lines)
