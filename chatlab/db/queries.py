"""The lab's named SQL queries: ``queries.sql`` read once, handed out by name.

Why a file of named blocks (as procrastinate's ``sql/queries.sql``): the SQL can be read,
reviewed and run in psql as SQL, and Python never builds SQL text — it asks for a query by
name, passes values as parameters and, where a query needs a schema name, fills the
``{schema}`` placeholder with :class:`psycopg.sql.Identifier` (quoted by psycopg).

Nothing here imports psycopg at import time (the load test must import it only after
gevent has patched ``select``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from sim.errors import ChatLabError

_NAME = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class UnknownQuery(ChatLabError):
    """A query name that ``queries.sql`` does not define (a bug in the caller)."""


@dataclass(frozen=True)
class Query:
    """One named block: its documentation and SQL text."""

    name: str
    doc: str
    text: str

    @property
    def identifiers(self) -> frozenset[str]:
        """The ``{placeholder}`` names the text needs (filled with quoted identifiers)."""
        return frozenset(_PLACEHOLDER.findall(self.text))

    def sql(self, **identifiers: str) -> Any:
        """The statement for psycopg: the text as ``bytes`` (no client-side brace handling), or,
        when it has ``{placeholders}``, a ``psycopg.sql.Composed`` with each quoted."""
        if set(identifiers) != self.identifiers:
            raise UnknownQuery(f"query {self.name!r} needs identifiers {sorted(self.identifiers)}, "
                               f"got {sorted(identifiers)}")
        if not identifiers:
            return self.text.encode()
        from psycopg import sql

        return sql.SQL(self.text).format(**{k: sql.Identifier(v) for k, v in identifiers.items()})


def parse(text: str) -> dict[str, Query]:
    """Split a named-query file into blocks (``-- name: x`` starts one; leading comments are its doc)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _NAME.match(line)
        if match:
            if match.group(1) in blocks:
                raise UnknownQuery(f"queries.sql defines {match.group(1)!r} twice")
            current = blocks[match.group(1)] = []
        elif current is not None:
            current.append(line)
    out: dict[str, Query] = {}
    for name, lines in blocks.items():
        doc = [ln[2:].strip() for ln in _leading_comments(lines)]
        body = "\n".join(lines[len(doc):]).strip()
        # a block ends where the next section's comment banner starts
        body = re.split(r"\n\s*\n-- -{10,}", body)[0].strip()
        out[name] = Query(name, "\n".join(doc), body)
    return out


def _leading_comments(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if not line.startswith("--"):
            break
        out.append(line)
    return out


@cache
def all_queries() -> dict[str, Query]:
    """Every query of ``chatlab/db/queries.sql`` by name."""
    return parse(resources.files("chatlab.db").joinpath("queries.sql").read_text(encoding="utf-8"))


def query(name: str, **identifiers: str) -> Any:
    """The named statement, ready for ``cursor.execute`` (see :meth:`Query.sql`)."""
    found = all_queries().get(name)
    if found is None:
        raise UnknownQuery(f"no query named {name!r} in chatlab/db/queries.sql")
    return found.sql(**identifiers)
