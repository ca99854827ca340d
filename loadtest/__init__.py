"""The Locust suite that drives the chat flows against the real PostgreSQL functions.

Organised as Locust organises its own code:

* ``locustfile`` — the entry point Locust loads (imports locust first, checks gevent and
  psycopg cooperate, then the pieces below);
* ``users/`` — the Locust users, one module each on the abstract ``ChatUser`` that owns its
  connection of the lab's typed client (``chatlab.db.client.ChatDB``): ``RealUser``,
  ``Operator`` (worker + poller), ``Housekeeper``;
* ``shape`` — the load shape; ``listeners`` — the event listeners (settings in, scenario
  t = 0, arrivals out, run info); ``reporting`` — every client call as a Locust request event;
* ``settings`` — one load test's settings, from the command line to every Locust process;
  ``runtime`` — a Locust process's state; ``clock`` — scenario time at K x wall speed;
  ``plan`` — sizing the real-user pool;
* ``wakes`` — the process's ``LISTEN chatlab_news`` line: clients are woken, not polling;
  in push mode ``listeners`` also runs the dispatcher (``chatlab.db.dispatcher``);
* ``session`` — one load test end to end (database, schema, Locust, event log, results);
  ``locustproc`` — Locust as a bounded child process.

The users themselves come from ``sim/population.py`` (the simulation's own users), the
database from ``chatlab.db``; reports of a load test are ``chatlab.report``'s job.
"""
