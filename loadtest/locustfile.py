"""Locust entry point of ``chatlab loadtest``: real users, operators and the housekeeping jobs
against the real SQL functions.

Run it through ``chatlab loadtest SCENARIO`` (which creates a fresh schema, seeds the
operators and writes the settings this suite reads from ``$CHATLAB_LOADTEST_CONFIG``), or as
a distributed worker: ``python -m locust -f loadtest/locustfile.py --worker --master-host H``.

The pieces, as Locust organises its own code: the users in ``loadtest/users/`` (one module
each, on the abstract ``ChatUser``), the load shape in ``loadtest/shape.py``, the event
listeners in ``loadtest/listeners.py``.

IMPORTANT: ``import locust`` must stay the first import (gevent patches ``select`` there);
psycopg imported earlier would block the whole process.  ``ensure_cooperative_wait`` fails
loudly if that ever happens.
"""

from __future__ import annotations

import locust  # noqa: F401  # must be first: gevent patches select before psycopg is imported

from loadtest.reporting import ensure_cooperative_wait

WAIT_FUNCTION = ensure_cooperative_wait()  # raises NotCooperative when psycopg would block

from loadtest import listeners  # noqa: E402  # registers the event listeners
from loadtest.shape import ChatLoadShape  # noqa: E402,F401
from loadtest.users.housekeeper import Housekeeper  # noqa: E402,F401
from loadtest.users.operator import Operator  # noqa: E402,F401
from loadtest.users.real_user import RealUser  # noqa: E402,F401

listeners.WAIT_FUNCTION["name"] = WAIT_FUNCTION
