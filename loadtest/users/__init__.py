"""The Locust users of a load test, one module each (as Locust's own ``user/`` package):

* :class:`~loadtest.users.base.ChatUser` — the abstract user: owns its database client;
* :class:`~loadtest.users.real_user.RealUser` — a customer, one conversation at a time;
* :class:`~loadtest.users.operator.Operator` — one seeded operator (worker + poller);
* :class:`~loadtest.users.housekeeper.Housekeeper` — idle detection and stuck-chat release.

Import :mod:`locust` before this package (``loadtest/locustfile.py`` does): the users'
client imports psycopg, which must come after gevent's patches.
"""
