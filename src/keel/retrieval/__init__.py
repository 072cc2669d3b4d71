"""Retrieval: ingestion, chunking, embedders, vector + keyword indexes, hybrid search, ACL.

A collection lives in its own tables (SQLite with sqlite-vec and FTS5 by default, Postgres
with pgvector and full-text search at scale). Every ingest creates an index version; queries
read the collection's current version, so a rollback is one pointer move.
"""
