"""The real system: embedded/external PostgreSQL, numbered SQL migrations, a thin typed client.

Modules (import what you need; nothing here imports psycopg eagerly):

* :mod:`chatlab.db.server`   – ``database_url()``, ``temporary_server()``, ``session_database()``, ``server_status()``, ``stop_server()``
* :mod:`chatlab.db.migrate`  – ``migrate(conninfo, schema)``, ``applied_versions``, ``drop_schema``
* :mod:`chatlab.db.client`   – ``ChatDB``: one method per SQL function, typed errors, ``set_clock``;
                               the one client of the CLI, the tests and the Locust users
* :mod:`chatlab.db.queries`  – the named queries of ``queries.sql`` (all SQL outside the migrations)
* :mod:`chatlab.db.clock`    – the lab's epoch (``EPOCH``; SQL: ``chatlab_epoch()``)
* :mod:`chatlab.db.errors`   – ``translate``: a SQLSTATE to the same ``sim.errors`` class the in-memory system raises
* :mod:`chatlab.db.snapshot` – ``read_snapshot``: the DB state as a ``sim.policies.Snapshot``
* :mod:`chatlab.db.history`  – ``read_event_log``: the DB history as a ``sim.eventlog`` DataFrame
* ``migrations/*.sql``       – 001 base tables, 014-016 the seed's fix, 017 access control, 018 epoch
"""
