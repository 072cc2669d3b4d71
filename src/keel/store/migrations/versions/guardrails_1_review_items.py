"""Review items: answers held by a guardrail policy until a reviewer (or a timeout) decides.

Revision ID: guardrails_1
Revises: evals_1
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "guardrails_1"
down_revision = "evals_1"
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("pipeline_version", sa.Text(), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reasons", _JSON, nullable=False),
        sa.Column("result", _JSON, nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("deadline", _TIMESTAMP, nullable=False),
        sa.Column("default_action", sa.String(16), nullable=False),
        sa.Column("webhook", sa.Text(), nullable=True),
        sa.Column("decided_at", _TIMESTAMP, nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_review_items"),
    )
    op.create_index("ix_review_items_status_deadline", "review_items", ["status", "deadline"])


def downgrade() -> None:
    op.drop_index("ix_review_items_status_deadline", table_name="review_items")
    op.drop_table("review_items")
