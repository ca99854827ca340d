"""The domain: the chat system's rules and the SimPy model that plays them.

``statemachine`` (states, events, legal transitions), ``errors`` (the lab's error hierarchy,
with the SQLSTATEs), ``policies`` (who gets which chat), ``system`` (the chat system in
memory: the reference implementation of ``docs/semantics.md``; ``records`` its rows, ``calls``
recording and replaying its operations), ``eventlog`` (the one event-log format),
``scenario`` (scenario files), ``distributions`` (random durations), ``population`` (the real
users of a scenario and seed, shared with the load test), ``model`` (the SimPy model),
``erlang`` (Erlang C, to check the model).  Nothing here knows about PostgreSQL, Locust or
reports.
"""
