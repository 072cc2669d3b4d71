"""The Postgres backend: a pgvector table with an HNSW index, and a ``tsvector`` table with a
GIN index (``ts_rank_cd``), both filtered on ACL set, version and metadata in their queries.

The HNSW index is built on *centered* vectors: each embedding minus the mean of the
collection's first ingest, compared by inner product. Embeddings share a large common
component (WordLlama's are means of token vectors), which makes every cosine distance
nearly the same and HNSW's graph hard to navigate; removing it spreads the distances out.
The ranking does not change: for unit vectors, cosine similarity ranks by ``q . x``, and
``q . (x - c) = q . x - q . c`` differs from it by a constant per query, whatever ``c`` is.
Measured by ``bench/retrieval.py`` (recall@10 against exact search). Collections made before
this keep their cosine index and are queried by cosine distance.

The index of a new collection is built after its first ingest's rows are written (a bulk
build is several times faster than inserting into the graph row by row); later ingests
insert into it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from keel.retrieval.backends import Restriction, Row
from keel.retrieval.filters import chunk_ids_query
from keel.retrieval.tables import LIVE

EXACT_BELOW = 10_000  # a filter admitting at most this many chunks is searched exactly


@dataclass(frozen=True, slots=True)
class HnswParams:
    """pgvector HNSW: graph degree and build-time candidate list (used when a collection's
    index is created), and the query-time candidate list.

    Measured by ``bench/retrieval.py`` at 100,000 chunks of the random-word corpus: degree 16
    reached recall@10 0.93 at ef_search 1000 (pgvector's maximum); degree 32 reaches 0.96 at
    ef_search 400, 0.98 at 600 and 0.996 at 1000, for a build about three times slower and an
    index 20% larger. 600 keeps a margin above 0.95 as collections grow."""

    m: int = 32
    ef_construction: int = 128
    ef_search: int = 600
    build_memory_mb: int = 1024  # maintenance_work_mem while the index is built


class PostgresBackend:
    def __init__(self, hnsw: HnswParams | None = None) -> None:
        self.hnsw = hnsw or HnswParams()
        self._centered: dict[int, str | None] = {}  # collection -> the indexed expression

    def warm(self, cid: int) -> None:
        """Nothing to prepare: Postgres answers from its own indexes."""

    def close(self) -> None:
        """Nothing held beyond the engine, which the index disposes of."""

    def create_tables(self, conn: Connection, cid: int, dim: int, sample: np.ndarray) -> None:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS retrieval_vec_{cid} (chunk_id bigint PRIMARY KEY, "
            f"acl_id integer NOT NULL, added integer NOT NULL, removed integer NOT NULL, "
            f"embedding vector({dim}) NOT NULL)"
        )
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS retrieval_center_{cid} (center vector({dim}) NOT NULL)"
        )
        center = sample.mean(axis=0) if len(sample) else np.zeros(dim, dtype=np.float32)
        conn.exec_driver_sql(
            f"INSERT INTO retrieval_center_{cid} (center) VALUES (%s::vector)", (_pgvector(center),)
        )
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS retrieval_fts_{cid} (chunk_id bigint PRIMARY KEY, "
            f"acl_id integer NOT NULL, added integer NOT NULL, removed integer NOT NULL, "
            f"tsv tsvector NOT NULL)"
        )
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS retrieval_fts_{cid}_gin ON retrieval_fts_{cid} "
            "USING gin (tsv)"
        )

    def finish(self, conn: Connection, cid: int) -> None:
        """After an ingest's rows are written: build the HNSW index if there is none yet."""
        expression = self.indexed_expression(conn, cid)
        if expression is None:
            return  # a collection from before centering: its index was made with its table
        # only for this transaction; the graph is built far faster when it fits in memory
        conn.exec_driver_sql(
            f"SET LOCAL maintenance_work_mem = '{int(self.hnsw.build_memory_mb)}MB'"
        )
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS retrieval_vec_{cid}_hnsw ON retrieval_vec_{cid} "
            f"USING hnsw (({expression}) vector_ip_ops) "
            f"WITH (m = {int(self.hnsw.m)}, ef_construction = {int(self.hnsw.ef_construction)})"
        )

    def indexed_expression(self, conn: Connection, cid: int) -> str | None:
        """The indexed expression (centered embedding), or ``None`` for an older collection
        indexed by cosine distance. Fixed once the collection exists, so kept per process."""
        if cid not in self._centered:
            found = conn.exec_driver_sql(
                "SELECT to_regclass(%s) IS NOT NULL", (f"retrieval_center_{cid}",)
            ).scalar_one()
            expression = None
            if found:
                center = conn.exec_driver_sql(
                    f"SELECT center::text, vector_dims(center) FROM retrieval_center_{cid}"
                ).one()
                # the center is a vector literal Postgres itself printed
                expression = f"(embedding - '{center[0]}'::vector)::vector({int(center[1])})"
            self._centered[cid] = expression
        return self._centered[cid]

    def add(self, conn: Connection, cid: int, rows: Sequence[Row], vectors: np.ndarray) -> None:
        conn.exec_driver_sql(
            f"INSERT INTO retrieval_vec_{cid} (chunk_id, acl_id, added, removed, embedding) "
            "VALUES (%s, %s, %s, %s, %s::vector)",
            [(r[0], r[1], r[2], LIVE, _pgvector(vectors[i])) for i, r in enumerate(rows)],
        )
        conn.exec_driver_sql(
            f"INSERT INTO retrieval_fts_{cid} (chunk_id, acl_id, added, removed, tsv) "
            "VALUES (%s, %s, %s, %s, to_tsvector('english', %s))",
            [(r[0], r[1], r[2], LIVE, r[3]) for r in rows],
        )

    def remove(self, conn: Connection, cid: int, ids: Sequence[int], version: int) -> None:
        for table in (f"retrieval_vec_{cid}", f"retrieval_fts_{cid}"):
            conn.exec_driver_sql(
                f"UPDATE {table} SET removed = %s WHERE chunk_id = ANY(%s)", (version, list(ids))
            )

    def purge_after(self, conn: Connection, cid: int, version: int) -> None:
        for table in (f"retrieval_vec_{cid}", f"retrieval_fts_{cid}"):
            conn.exec_driver_sql(f"DELETE FROM {table} WHERE added > %s", (version,))
            conn.exec_driver_sql(
                f"UPDATE {table} SET removed = %s WHERE removed > %s AND removed < %s",
                (LIVE, version, LIVE),
            )

    def restrict(self, conn: Connection, cid: int, filters: Mapping[str, Any]) -> Restriction:
        sql, params = chunk_ids_query("postgresql", cid, filters)
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
        scope = "acl_id = ANY(%s) AND added <= %s AND removed > %s"
        params: tuple[Any, ...] = (list(acl), v, v)
        query = _pgvector(vector)
        if only is not None:
            scope += f" AND chunk_id IN ({only.sql})"
            params += only.params
            if self._few(conn, only):  # exact distances over a selective filter's chunks
                sql = (
                    f"WITH m AS MATERIALIZED (SELECT chunk_id, embedding FROM retrieval_vec_{cid} "
                    f"WHERE {scope}) SELECT chunk_id, embedding <=> %s::vector AS distance "
                    "FROM m ORDER BY distance LIMIT %s"
                )
                rows = conn.exec_driver_sql(sql, (*params, query, k)).all()
                return [(int(r[0]), float(r[1])) for r in rows]
        # The ACL, version and filter conditions are checked as the HNSW index is walked;
        # iterative scans keep walking until k rows pass them (pgvector >= 0.8).
        conn.exec_driver_sql("SET LOCAL hnsw.iterative_scan = relaxed_order")
        conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {max(self.hnsw.ef_search, int(k))}")
        expression = self.indexed_expression(conn, cid)
        order = (
            "embedding <=> %s::vector" if expression is None else f"({expression}) <#> %s::vector"
        )
        sql = (
            f"SELECT chunk_id, embedding <=> %s::vector AS distance FROM retrieval_vec_{cid} "
            f"WHERE {scope} ORDER BY {order} LIMIT %s"
        )
        rows = conn.exec_driver_sql(sql, (query, *params, query, k)).all()
        return sorted(((int(r[0]), float(r[1])) for r in rows), key=lambda item: item[1])

    def _few(self, conn: Connection, only: Restriction) -> bool:
        sql = f"SELECT count(*) FROM (SELECT 1 FROM ({only.sql}) AS f LIMIT %s) AS n"
        return int(conn.exec_driver_sql(sql, (*only.params, EXACT_BELOW + 1)).scalar_one()) <= (
            EXACT_BELOW
        )

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
        restricted = f"AND chunk_id IN ({only.sql}) " if only else ""
        sql = (
            "SELECT chunk_id, ts_rank_cd(tsv, q) AS score "
            f"FROM retrieval_fts_{cid}, to_tsquery('english', %s) AS q "
            f"WHERE tsv @@ q AND acl_id = ANY(%s) AND added <= %s AND removed > %s {restricted}"
            "ORDER BY score DESC LIMIT %s"
        )
        params = (" | ".join(terms), list(acl), v, v, *(only.params if only else ()), k)
        rows = conn.exec_driver_sql(sql, params).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def vectors(self, conn: Connection, cid: int, ids: Sequence[int]) -> dict[int, np.ndarray]:
        sql = f"SELECT chunk_id, embedding::text FROM retrieval_vec_{cid} WHERE chunk_id = ANY(%s)"
        return {
            int(r[0]): np.array(r[1].strip("[]").split(","), dtype=np.float32)
            for r in conn.exec_driver_sql(sql, (list(ids),)).all()
        }


def _pgvector(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"
