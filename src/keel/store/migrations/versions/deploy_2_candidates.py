"""Several candidates per deployment, and which candidate answered each shadowed pair.

``deployments.candidates`` lists every candidate (the ``candidate`` column keeps the first);
``deployment_pairs.candidate_version`` names the candidate that answered. Existing rows are
filled in: a deployment's candidates are ``[candidate]`` and its pairs were answered by
that candidate, so nothing stored changes meaning.

Downgrading drops both columns; a deployment that had several candidates then reads as
one with its first candidate.

Revision ID: deploy_2
Revises: deploy_1
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "deploy_2"
down_revision = "deploy_1"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("deployments", sa.Column("candidates", _JSON, nullable=True))
    op.add_column("deployment_pairs", sa.Column("candidate_version", sa.String(128), nullable=True))
    conn = op.get_bind()
    deployments = sa.table(
        "deployments",
        sa.column("id", sa.String),
        sa.column("candidate", sa.String),
        sa.column("candidates", _JSON),
    )
    pairs = sa.table(
        "deployment_pairs",
        sa.column("deployment_id", sa.String),
        sa.column("candidate_version", sa.String),
    )
    rows = conn.execute(sa.select(deployments.c.id, deployments.c.candidate)).all()
    for row in rows:
        conn.execute(
            sa.update(deployments)
            .where(deployments.c.id == row.id)
            .values(candidates=[row.candidate])
        )
        conn.execute(
            sa.update(pairs)
            .where(pairs.c.deployment_id == row.id, pairs.c.candidate_version.is_(None))
            .values(candidate_version=row.candidate)
        )


def downgrade() -> None:
    with op.batch_alter_table("deployment_pairs") as batch:
        batch.drop_column("candidate_version")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("candidates")
