"""The lab's epoch on the Python side: scenario second ``t`` is ``EPOCH + t`` on the database clock.

Defined once here and once in SQL (``chatlab_epoch()``, migration 018); a test checks they are
the same instant.  The simulation counts seconds from 0 and the database stamps real
timestamps; everything that crosses between them (a replay pinning ``chatlab_now()``, the
history read back as an event log, a load test's wall clock) converts through this epoch —
see ``docs/semantics.md``, "Clock".
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

#: Time zero of the lab's clock.
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def to_timestamp(t: float) -> datetime:
    """Lab seconds -> aware datetime."""
    return EPOCH + timedelta(seconds=float(t))


def to_seconds(ts: datetime | None) -> float | None:
    """Aware datetime -> lab seconds (None stays None)."""
    return None if ts is None else (ts - EPOCH).total_seconds()
