"""Initial store: pipelines, versions, labels, traces, spans and the audit log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand to match ``keel/store/schema.py``; plain SQLAlchemy types are spelled out
so that later changes to Keel's column types cannot rewrite history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)
# NUMERIC(18, 9) on Postgres; an integer count of billionths on SQLite (see column_types).
_COST = sa.Numeric(18, 9).with_variant(sa.BigInteger(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    _create_pipelines()
    _create_traces()
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("details", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def _create_pipelines() -> None:
    op.create_table(
        "pipelines",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_pipelines"),
    )
    op.create_table(
        "pipeline_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("spec", _JSON, nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_versions"),
        sa.ForeignKeyConstraint(
            ["pipeline"],
            ["pipelines.name"],
            name="fk_pipeline_versions_pipeline_pipelines",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("pipeline", "version", name="uq_pipeline_versions_pipeline_version"),
    )
    op.create_table(
        "pipeline_labels",
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "label", name="pk_pipeline_labels"),
        sa.ForeignKeyConstraint(
            ["pipeline", "version"],
            ["pipeline_versions.pipeline", "pipeline_versions.version"],
            name="fk_pipeline_labels_pipeline_version_pipeline_versions",
            ondelete="CASCADE",
        ),
    )


def _create_traces() -> None:
    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("correlation_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=True),
        sa.Column("pipeline_version", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("caller", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", _COST, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", name="pk_traces"),
    )
    op.create_index("ix_traces_correlation_id", "traces", ["correlation_id"])
    op.create_index("ix_traces_start_ns", "traces", ["start_ns"])
    op.create_index("ix_traces_pipeline_start_ns", "traces", ["pipeline", "start_ns"])
    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("parent_span_id", sa.String(16), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", _COST, nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.Column("attributes", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "span_id", name="pk_spans"),
    )


def downgrade() -> None:
    op.drop_table("spans")
    op.drop_index("ix_traces_pipeline_start_ns", table_name="traces")
    op.drop_index("ix_traces_start_ns", table_name="traces")
    op.drop_index("ix_traces_correlation_id", table_name="traces")
    op.drop_table("traces")
    op.drop_table("pipeline_labels")
    op.drop_table("pipeline_versions")
    op.drop_table("pipelines")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
