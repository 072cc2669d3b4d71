"""Vector and keyword index tables per collection: the backend interface, and SQLite's.

* SQLite: a ``vec0`` virtual table (sqlite-vec; cosine distance, exact search) and an FTS5
  table (BM25, Porter stemming). sqlite-vec needs a SQLite that can load extensions, so the
  DBAPI module is ``pysqlite3`` (pysqlite3-binary), not the standard library's ``sqlite3``.
  With the in-process cache on, queries search its snapshot instead (``vector_cache``).
* Postgres: ``pgvector_backend``.

Every query filters on the chunk's ACL set and version range in its own ``WHERE`` clause (the
vector tables carry ``acl_id``, ``added`` and ``removed``; SQLite's keyword query joins
``retrieval_chunks`` for them): a chunk outside the caller's groups or the current version
is never a candidate, not merely dropped afterwards. A metadata filter works the same way:
``restrict`` turns it into the set of matching chunks (``filters``), and both queries select
their candidates among those only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy.engine import Connection

from keel.retrieval.filters import chunk_ids_query
from keel.retrieval.tables import LIVE
from keel.retrieval.vector_cache import VectorCache

Row = tuple[int, int, int, str]  # chunk id, acl id, added version, text for the keyword index


@dataclass(frozen=True, slots=True)
class Restriction:
    """The chunks a metadata filter admits: a ``SELECT`` of their ids with its parameters,
    and the filter itself (the in-process cache evaluates it on its own columns)."""

    sql: str
    params: tuple[Any, ...]
    filters: Mapping[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    def create_tables(self, conn: Connection, cid: int, dim: int, sample: np.ndarray) -> None:
        """Create a new collection's tables; ``sample``: its first ingest's vectors."""

    def finish(self, conn: Connection, cid: int) -> None:
        """After an ingest's rows are written, in the same transaction."""

    def add(self, conn: Connection, cid: int, rows: Sequence[Row], vectors: np.ndarray) -> None: ...

    def remove(self, conn: Connection, cid: int, ids: Sequence[int], version: int) -> None: ...

    def purge_after(self, conn: Connection, cid: int, version: int) -> None: ...

    def restrict(self, conn: Connection, cid: int, filters: Mapping[str, Any]) -> Restriction: ...

    def knn(
        self,
        conn: Connection,
        cid: int,
        vector: np.ndarray,
        k: int,
        acl: Sequence[int],
        v: int,
        only: Restriction | None = None,
    ) -> list[tuple[int, float]]: ...

    def keyword(
        self,
        conn: Connection,
        cid: int,
        terms: Sequence[str],
        k: int,
        acl: Sequence[int],
        v: int,
        only: Restriction | None = None,
    ) -> list[tuple[int, float]]: ...

    def vectors(self, conn: Connection, cid: int, ids: Sequence[int]) -> dict[int, np.ndarray]: ...

    def warm(self, cid: int) -> None:
        """Prepare collection ``cid`` for queries (off the request path, after an ingest)."""

    def close(self) -> None: ...


def _marks(values: Sequence[Any], mark: str) -> str:
    return ",".join([mark] * len(values))


class SQLiteBackend:
    def __init__(self, cache: VectorCache | None = None) -> None:
        self.cache = cache

    def warm(self, cid: int) -> None:
        if self.cache is not None:
            self.cache.warm(cid).result()

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def finish(self, conn: Connection, cid: int) -> None:
        """Nothing to do: the tables are complete as written."""

    def create_tables(self, conn: Connection, cid: int, dim: int, sample: np.ndarray) -> None:
        # Vectors are unit length, so L2 ranks exactly as cosine does, and sqlite-vec's L2
        # kernel is the faster of the two.
        conn.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS retrieval_vec_{cid} USING vec0("
            f"acl_id integer, added integer, removed integer, embedding float[{dim}])"
        )
        conn.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS retrieval_fts_{cid} USING fts5("
            "text, tokenize='porter unicode61')"
        )

    def add(self, conn: Connection, cid: int, rows: Sequence[Row], vectors: np.ndarray) -> None:
        vec = np.ascontiguousarray(vectors, dtype=np.float32)
        conn.exec_driver_sql(
            f"INSERT INTO retrieval_vec_{cid}(rowid, acl_id, added, removed, embedding) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r[0], r[1], r[2], LIVE, vec[i].tobytes()) for i, r in enumerate(rows)],
        )
        conn.exec_driver_sql(
            f"INSERT INTO retrieval_fts_{cid}(rowid, text) VALUES (?, ?)",
            [(r[0], r[3]) for r in rows],
        )

    def remove(self, conn: Connection, cid: int, ids: Sequence[int], version: int) -> None:
        # the keyword index is filtered through retrieval_chunks, which the caller updates
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            conn.exec_driver_sql(
                f"UPDATE retrieval_vec_{cid} SET removed = ? WHERE rowid IN ({_marks(part, '?')})",
                (version, *part),
            )

    def purge_after(self, conn: Connection, cid: int, version: int) -> None:
        conn.exec_driver_sql(
            f"DELETE FROM retrieval_fts_{cid} WHERE rowid IN "
            "(SELECT id FROM retrieval_chunks WHERE collection_id = ? AND added_version > ?)",
            (cid, version),
        )
        conn.exec_driver_sql(f"DELETE FROM retrieval_vec_{cid} WHERE added > ?", (version,))
        conn.exec_driver_sql(
            f"UPDATE retrieval_vec_{cid} SET removed = ? WHERE removed > ? AND removed < ?",
            (LIVE, version, LIVE),
        )

    def restrict(self, conn: Connection, cid: int, filters: Mapping[str, Any]) -> Restriction:
        sql, params = chunk_ids_query("sqlite", cid, filters)
        return Restriction(sql, tuple(params), dict(filters))

    def knn(
        self,
        conn: Connection,
        cid: int,
        vector: np.ndarray,
        k: int,
        acl: Sequence[int],
        v: int,
        only: Restriction | None = None,
    ) -> list[tuple[int, float]]:
        if self.cache is not None:
            found = self.cache.knn(conn, cid, vector, k, acl, v, only.filters if only else None)
            if found is not None:
                return found
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        scope = f"acl_id IN ({_marks(acl, '?')}) AND added <= ? AND removed > ?"
        if only is None:
            sql = (
                f"SELECT rowid, distance FROM retrieval_vec_{cid} WHERE embedding MATCH ? "
                f"AND k = ? AND {scope} ORDER BY distance"
            )
            rows = conn.exec_driver_sql(sql, (blob, k, *acl, v, v)).all()
        else:  # exact distances over the filter's chunks only
            sql = (
                f"SELECT rowid, vec_distance_l2(embedding, ?) AS distance "
                f"FROM retrieval_vec_{cid} WHERE rowid IN ({only.sql}) AND {scope} "
                "ORDER BY distance LIMIT ?"
            )
            rows = conn.exec_driver_sql(sql, (blob, *only.params, *acl, v, v, k)).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def keyword(
        self,
        conn: Connection,
        cid: int,
        terms: Sequence[str],
        k: int,
        acl: Sequence[int],
        v: int,
        only: Restriction | None = None,
    ) -> list[tuple[int, float]]:
        if self.cache is not None:
            found = self.cache.keyword(conn, cid, terms, k, acl, v, only.filters if only else None)
            if found is not None:
                return found
        query = " OR ".join(f'"{term}"' for term in terms)
        restricted = f"AND f.rowid IN ({only.sql}) " if only else ""
        sql = (
            f"SELECT f.rowid, bm25(retrieval_fts_{cid}) AS score FROM retrieval_fts_{cid} AS f "
            "JOIN retrieval_chunks AS c ON c.id = f.rowid "
            f"WHERE retrieval_fts_{cid} MATCH ? AND c.acl_id IN ({_marks(acl, '?')}) "
            f"AND c.added_version <= ? AND c.removed_version > ? {restricted}"
            "ORDER BY score LIMIT ?"
        )
        params = (query, *acl, v, v, *(only.params if only else ()), k)
        rows = conn.exec_driver_sql(sql, params).all()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def vectors(self, conn: Connection, cid: int, ids: Sequence[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        sql = (
            f"SELECT rowid, embedding FROM retrieval_vec_{cid} WHERE rowid IN ({_marks(ids, '?')})"
        )
        return {
            int(r[0]): np.frombuffer(r[1], dtype=np.float32)
            for r in conn.exec_driver_sql(sql, tuple(ids)).all()
        }
