"""Usage per hour, API key, pipeline and model: requests, tokens, cost and cache savings.

Revision ID: gateway_2
Revises: gateway_1
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_2"
down_revision = "alerts_1"
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)
# NUMERIC(18, 9) on Postgres; an integer count of billionths on SQLite (see column_types).
_COST = sa.Numeric(18, 9).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage_hourly",
        sa.Column("hour", _TIMESTAMP, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("cache_hits", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", _COST, nullable=False),
        sa.Column("saved_usd", _COST, nullable=False),
        sa.PrimaryKeyConstraint("hour", "key_id", "pipeline", "model", name="pk_usage_hourly"),
    )


def downgrade() -> None:
    op.drop_table("usage_hourly")
