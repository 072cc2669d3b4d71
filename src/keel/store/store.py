"""``Store``: one handle on Keel's database and its repositories."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from keel.core.errors import ConfigError
from keel.store import migrate
from keel.store.alerts import AlertRepository
from keel.store.audit import AuditRepository
from keel.store.datasets import DatasetRepository
from keel.store.deployments import DeploymentRepository
from keel.store.engine import SQLiteTuning, create_engine, describe, parse_url
from keel.store.eval_runs import EvalRunRepository
from keel.store.feedback import FeedbackRepository
from keel.store.keys import KeyRepository
from keel.store.monitoring import MonitoringRepository
from keel.store.pipelines import PipelineRepository
from keel.store.reviews import ReviewRepository
from keel.store.samples import SampleRepository
from keel.store.traces import TraceRepository
from keel.store.usage import UsageRepository


class Store:
    """The database behind Keel: pipelines, traces and the audit log.

    Open one per process with :meth:`open` and share it; it is thread-safe (each call checks a
    connection out of the engine's pool) and holds no other state.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pipelines = PipelineRepository(engine)
        self.traces = TraceRepository(engine)
        self.audit = AuditRepository(engine)
        self.datasets = DatasetRepository(engine)
        self.eval_runs = EvalRunRepository(engine)
        self.reviews = ReviewRepository(engine)
        self.keys = KeyRepository(engine)
        self.feedback = FeedbackRepository(engine)
        self.samples = SampleRepository(engine)
        self.alerts = AlertRepository(engine)
        self.monitoring = MonitoringRepository(engine)
        self.usage = UsageRepository(engine)
        self.deployments = DeploymentRepository(engine)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, sqlite: SQLiteTuning | None = None) -> Store:
        """Connect to ``url`` (SQLite or Postgres); run pending migrations unless told not to.
        ``sqlite`` bounds a SQLite store's connections and memory (defaults otherwise)."""
        parsed = parse_url(url)
        store = cls(create_engine(parsed, sqlite))
        if migrate:
            try:
                store.upgrade()
            except BaseException:
                store.close()
                raise
        return store

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return describe(self.engine.url)

    def upgrade(self) -> None:
        """Run pending migrations (idempotent)."""
        try:
            migrate.upgrade(self.engine)
        except OperationalError as exc:
            raise self._unreachable(exc) from exc

    def revision(self) -> str | None:
        """The schema revision the database is at; None before the first migration."""
        try:
            return migrate.current_revision(self.engine)
        except OperationalError as exc:
            raise self._unreachable(exc) from exc

    def ping(self) -> None:
        """Check that the database answers; raises ConfigError ``store_unreachable`` if not."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise self._unreachable(exc) from exc

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _unreachable(self, exc: SQLAlchemyError) -> ConfigError:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        msg = f"Cannot use the store at {self.url}: {reason}. Check KEEL_DATABASE_URL."
        return ConfigError(msg, code="store_unreachable", url=self.url)
