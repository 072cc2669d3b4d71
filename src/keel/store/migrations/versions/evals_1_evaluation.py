"""Evaluation: versioned datasets and their items, eval runs and per-trial results.

Revision ID: evals_1
Revises: 0001

Written by hand to match ``keel/store/schema.py``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "evals_1"
down_revision = "0001"
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)
_COST = sa.Numeric(18, 9).with_variant(sa.BigInteger(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    _create_datasets()
    _create_runs()


def _create_datasets() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("name", "version", name="uq_datasets_name_version"),
    )
    op.create_table(
        "dataset_items",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("input", _JSON, nullable=False),
        sa.Column("expected", _JSON, nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("tags", _JSON, nullable=False),
        sa.Column("metadata", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "position", name="pk_dataset_items"),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_dataset_items_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("dataset_id", "item_id", name="uq_dataset_items_dataset_id_item_id"),
    )


def _create_runs() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("config_key", sa.String(64), nullable=False),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("pipeline_version", sa.String(128), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("params", _JSON, nullable=False),
        sa.Column("evaluators", _JSON, nullable=False),
        sa.Column("models", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.String(64), nullable=True),
        sa.Column("summary", _JSON, nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("finished_at", _TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_eval_runs"),
    )
    op.create_index("ix_eval_runs_config_key", "eval_runs", ["config_key"])
    op.create_index("ix_eval_runs_label", "eval_runs", ["label"])
    op.create_table(
        "eval_results",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("trial", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("output", _JSON, nullable=True),
        sa.Column("scores", _JSON, nullable=False),
        sa.Column("details", _JSON, nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", _COST, nullable=False),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "item_id", "trial", name="pk_eval_results"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["eval_runs.run_id"],
            name="fk_eval_results_run_id_eval_runs",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("eval_results")
    op.drop_index("ix_eval_runs_label", table_name="eval_runs")
    op.drop_index("ix_eval_runs_config_key", table_name="eval_runs")
    op.drop_table("eval_runs")
    op.drop_table("dataset_items")
    op.drop_table("datasets")
