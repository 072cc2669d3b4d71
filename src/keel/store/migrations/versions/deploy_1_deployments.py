"""Deployments per pipeline endpoint, their history, and shadowed answer pairs.

Revision ID: deploy_1
Revises: gateway_1
Create Date: 2025-02-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "deploy_1"
down_revision = "gateway_2"
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("active_pipeline", sa.String(200), nullable=True),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stable", sa.String(128), nullable=False),
        sa.Column("candidate", sa.String(128), nullable=False),
        sa.Column("weights", _JSON, nullable=False),
        sa.Column("config", _JSON, nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_started_at", _TIMESTAMP, nullable=False),
        sa.Column("failed_checks", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.UniqueConstraint("active_pipeline", name="uq_deployments_active_pipeline"),
    )
    op.create_index("ix_deployments_pipeline", "deployments", ["pipeline"])
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.String(32), nullable=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("weights", _JSON, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("evidence", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_events"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_deployment_events_deployment_id_deployments",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_deployment_events_deployment_id", "deployment_events", ["deployment_id"])
    _create_pairs()


def _create_pairs() -> None:
    op.create_table(
        "deployment_pairs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.String(32), nullable=False),
        sa.Column("pair_id", sa.String(32), nullable=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("baseline_trace_id", sa.String(32), nullable=True),
        sa.Column("candidate_trace_id", sa.String(32), nullable=True),
        sa.Column("baseline_score", sa.Float(), nullable=True),
        sa.Column("candidate_score", sa.Float(), nullable=True),
        sa.Column("baseline_latency_ms", sa.Float(), nullable=True),
        sa.Column("candidate_latency_ms", sa.Float(), nullable=True),
        sa.Column("candidate_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_pairs"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_deployment_pairs_deployment_id_deployments",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_deployment_pairs_deployment_id_at", "deployment_pairs", ["deployment_id", "at"]
    )


def downgrade() -> None:
    op.drop_table("deployment_pairs")
    op.drop_table("deployment_events")
    op.drop_table("deployments")
