"""Metadata filters as SQL, so they select candidates inside the vector and keyword queries.

A filter maps metadata keys to a wanted value, or to a list meaning "any of these"; values
are strings, numbers, booleans or null (null matches a missing key too). Every query of a
filtered search restricts itself to the chunks of matching documents before it ranks
anything, so a selective filter still returns its top-k, not what was left of an unfiltered
top-k.

* SQLite: ``json_extract(meta, '$."key"')`` compared with the bound value (JSON true and
  false read as 1 and 0, as in SQLite generally).
* Postgres: ``meta::jsonb -> 'key'`` compared with the value as ``jsonb`` (types matter:
  true is not 1, "1" is not 1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from keel.core.errors import InvalidInputError

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SCALARS = (str, int, float, bool, type(None))


def validate(filters: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Each key with the list of values it may take."""
    wanted: dict[str, list[Any]] = {}
    for key, value in filters.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInputError(
                f"metadata filter key {key!r} must be letters, digits, _, - or .",
                code="retrieval_filter_invalid",
            )
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, _SCALARS) for v in values):
            raise InvalidInputError(
                f"metadata filter {key!r} must be a string, number, boolean or null, or a "
                "non-empty list of them",
                code="retrieval_filter_invalid",
            )
        wanted[key] = values
    return wanted


def document_condition(
    dialect: str, filters: Mapping[str, Any], alias: str = "d"
) -> tuple[str, list[Any]]:
    """A SQL condition on the documents table (as ``alias``) and its parameters, in the
    driver's own placeholder style (``?`` for SQLite, ``%s`` for psycopg)."""
    clauses: list[str] = []
    params: list[Any] = []
    for key, values in validate(filters).items():
        present = [v for v in values if v is not None]
        parts: list[str] = []
        if dialect == "sqlite":
            field = f"json_extract({alias}.meta, ?)"
            path = f'$."{key}"'
            if present:
                parts.append(f"{field} IN ({','.join('?' * len(present))})")
                params += [path, *present]
            if len(present) < len(values):
                parts.append(f"{field} IS NULL")
                params.append(path)
        else:
            field = f"({alias}.meta::jsonb -> %s::text)"
            if present:
                parts.append(f"{field} IN ({','.join(['%s::jsonb'] * len(present))})")
                params += [key, *(orjson.dumps(v).decode() for v in present)]
            if len(present) < len(values):
                parts.append(f"coalesce({field}, 'null'::jsonb) = 'null'::jsonb")
                params.append(key)
        clauses.append("(" + " OR ".join(parts) + ")")
    return " AND ".join(clauses) or "1=1", params


def chunk_ids_query(dialect: str, cid: int, filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``SELECT`` of the collection's chunk ids whose documents match ``filters``."""
    condition, params = document_condition(dialect, filters)
    mark = "?" if dialect == "sqlite" else "%s"
    # keys were validated against a strict pattern and every value is a bound parameter
    sql = (
        "SELECT c.id FROM retrieval_chunks AS c JOIN retrieval_documents AS d "  # noqa: S608
        f"ON d.id = c.document_id WHERE c.collection_id = {mark} AND {condition}"
    )
    return sql, [cid, *params]
