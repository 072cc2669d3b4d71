"""Feedback, the shared-feedback queue, sampled reviews and online evaluation scores.

Revision ID: feedback_1
Revises: gateway_1
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "feedback_1"
down_revision = "gateway_1"
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    _create_feedback()
    _create_queue()
    _create_samples()
    _create_scores()


def _create_feedback() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=True),
        sa.Column("pipeline_version", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", _JSON, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("caller", sa.Text(), nullable=False),
        sa.Column("end_user", sa.Text(), nullable=True),
        sa.Column("overrides", sa.Boolean(), nullable=True),
        sa.Column("automated", _JSON, nullable=True),
        sa.Column("share", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint(
            "trace_id", "user_id", "kind", name="uq_feedback_trace_id_user_id_kind"
        ),
    )
    op.create_index("ix_feedback_trace_id", "feedback", ["trace_id"])
    op.create_index("ix_feedback_user_id_created_at", "feedback", ["user_id", "created_at"])
    op.create_index("ix_feedback_pipeline_created_at", "feedback", ["pipeline", "created_at"])


def _create_queue() -> None:
    op.create_table(
        "feedback_queue",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("feedback_id", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=True),
        sa.Column("pipeline_version", sa.Text(), nullable=True),
        sa.Column("input", _JSON, nullable=False),
        sa.Column("output", _JSON, nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("expected", _JSON, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("flags", _JSON, nullable=False),
        sa.Column("pii", _JSON, nullable=False),
        sa.Column("submitted_by", sa.Text(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", _TIMESTAMP, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("dataset", sa.Text(), nullable=True),
        sa.Column("dataset_version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_feedback_queue"),
        sa.UniqueConstraint("feedback_id", name="uq_feedback_queue_feedback_id"),
    )
    op.create_index(
        "ix_feedback_queue_status_created_at", "feedback_queue", ["status", "created_at"]
    )


def _create_samples() -> None:
    op.create_table(
        "review_samples",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("pipeline_version", sa.Text(), nullable=False),
        sa.Column("input", _JSON, nullable=True),
        sa.Column("result", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("reviewed_by", sa.Text(), nullable=True),
        sa.Column("reviewed_at", _TIMESTAMP, nullable=True),
        sa.Column("correction", _JSON, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_review_samples"),
        sa.UniqueConstraint("trace_id", name="uq_review_samples_trace_id"),
    )
    op.create_index(
        "ix_review_samples_pipeline_created_at", "review_samples", ["pipeline", "created_at"]
    )
    op.create_index(
        "ix_review_samples_status_created_at", "review_samples", ["status", "created_at"]
    )


def _create_scores() -> None:
    op.create_table(
        "online_scores",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("pipeline_version", sa.Text(), nullable=False),
        sa.Column("evaluator", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "metric", name="pk_online_scores"),
    )
    op.create_index(
        "ix_online_scores_pipeline_pipeline_version_created_at",
        "online_scores",
        ["pipeline", "pipeline_version", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("online_scores")
    op.drop_table("review_samples")
    op.drop_table("feedback_queue")
    op.drop_table("feedback")
