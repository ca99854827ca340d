"""Locust suite that drives the chat flows against the real PostgreSQL functions.

Modules (``chatlab loadtest`` / ``chatlab compare-real`` tie them together in ``session``):

* ``locustfile`` — the Locust users (RealUser, Operator worker + poller, Housekeeper) and the
  load shape; runs only in a Locust process (imports locust before psycopg);
* ``pgclient`` / ``chatapi`` — one psycopg connection per user, every call reported to Locust;
  the SQL functions with their expected race outcomes; ``sql/`` — the few queries of our own;
* ``flowparams`` — what the
  flows need from a scenario; ``clock`` — scenario time at K x wall speed; ``plan`` — pool sizing;
* ``config`` — the run's parameters handed to Locust; ``database`` / ``dbsetup`` — server,
  schema, seeded operators, history, integrity checks; ``locustproc`` — Locust as a bounded
  child process; ``session`` — one load test end to end; ``comparison`` — sim vs load test;
* ``sleep_locustfile`` / ``flow_locustfile`` — probes for the benchmarks and the concurrency test.
"""
