"""Correctness tooling: trace replay against the database and SQL invariants of the history.

``replay``: apply a simulation's event log to the real functions and list every decision the
database made differently.  ``invariants``: checks that must hold after any amount of
concurrent load or injected faults (no chat held twice, none lost, history = current state).
"""
