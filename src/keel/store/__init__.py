"""Keel's store: pipelines, versions and labels, traces and spans, and the audit log.

SQLAlchemy Core on SQLite (the default) or Postgres, with Alembic migrations shipped in the
package. Open it with ``Store.open(url)``; repositories hang off the returned object.
"""

from keel.store.audit import AuditEntry, AuditRepository
from keel.store.pipelines import PipelineRepository, PipelineSummary, StoredVersion
from keel.store.store import Store
from keel.store.traces import TraceRepository

__all__ = [
    "AuditEntry",
    "AuditRepository",
    "PipelineRepository",
    "PipelineSummary",
    "Store",
    "StoredVersion",
    "TraceRepository",
]
