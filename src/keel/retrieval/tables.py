"""The retrieval database's relational tables (SQLAlchemy Core, same on SQLite and Postgres).

Rows are never updated in place: a document or chunk is *added* in one index version and
*removed* in a later one (``removed_version`` stays at ``LIVE`` while it is current), so a
query at version ``v`` sees exactly the rows with ``added_version <= v < removed_version``
and a rollback only moves the collection's ``current_version`` pointer.

Vectors and keyword indexes live in per-collection tables owned by the backend
(``retrieval_vec_<id>``, ``retrieval_fts_<id>``), carrying the same ACL and version columns so
both filters run inside the vector and keyword queries themselves.
"""

from __future__ import annotations

import sqlalchemy as sa

LIVE = 2**31 - 1
PUBLIC_ACL_KEY = ""  # documents without groups: everyone may read them

metadata = sa.MetaData()

collections = sa.Table(
    "retrieval_collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("embedder", sa.String(200), nullable=False),
    sa.Column("dim", sa.Integer, nullable=True),
    sa.Column("current_version", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

versions = sa.Table(
    "retrieval_versions",
    metadata,
    sa.Column("collection_id", sa.Integer, sa.ForeignKey(collections.c.id), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("embedder", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, default="active"),
    sa.Column("root", sa.Text, nullable=False, default=""),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("changes", sa.JSON, nullable=False),  # {"added": {source: hash}, "removed": {…}}
)

documents = sa.Table(
    "retrieval_documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("collection_id", sa.Integer, sa.ForeignKey(collections.c.id), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("exact_hash", sa.String(64), nullable=False),
    sa.Column("simhash", sa.BigInteger, nullable=False),
    sa.Column("groups", sa.JSON, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("acl_id", sa.Integer, nullable=False),
    sa.Column("added_version", sa.Integer, nullable=False),
    sa.Column("removed_version", sa.Integer, nullable=False, default=LIVE),
    sa.Column("modified_at", sa.Float, nullable=True),  # source mtime, for freshness reports
    sa.Index("ix_retrieval_documents_source", "collection_id", "source"),
)

chunks = sa.Table(
    "retrieval_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("collection_id", sa.Integer, nullable=False),
    sa.Column("document_id", sa.Integer, sa.ForeignKey(documents.c.id), nullable=False),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("heading", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("tokens", sa.Integer, nullable=False),
    sa.Column("acl_id", sa.Integer, nullable=False),
    sa.Column("added_version", sa.Integer, nullable=False),
    sa.Column("removed_version", sa.Integer, nullable=False, default=LIVE),
    sa.Index("ix_retrieval_chunks_document", "document_id"),
    sa.Index("ix_retrieval_chunks_version", "collection_id", "added_version"),
)

acls = sa.Table(
    "retrieval_acls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.Text, nullable=False, unique=True),  # sorted groups, "\n"-joined
)

acl_groups = sa.Table(
    "retrieval_acl_groups",
    metadata,
    sa.Column("acl_id", sa.Integer, sa.ForeignKey(acls.c.id), primary_key=True),
    sa.Column("group_name", sa.String(200), primary_key=True),
    sa.Index("ix_retrieval_acl_groups_group", "group_name"),
)

citations = sa.Table(
    "retrieval_citations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("trace_id", sa.String(32), nullable=False, index=True),
    sa.Column("collection_id", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("document_id", sa.Integer, nullable=False, index=True),
    sa.Column("chunk_id", sa.Integer, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
