"""The store's tables, as SQLAlchemy Core metadata; one schema for SQLite and Postgres.

The migrations in ``store/migrations/versions`` create exactly this; a test compares the two.
Spans carry no foreign key to traces: a trace row is written from its root span, which ends
(and is exported) after its children.
"""

from __future__ import annotations

import sqlalchemy as sa

from keel.store.column_types import ExactDecimal, JSONDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

pipeline_versions = sa.Table(
    "pipeline_versions",
    metadata,
    # A surrogate key orders pushes exactly, even two within one clock tick.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "pipeline",
        sa.String(200),
        sa.ForeignKey("pipelines.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("spec", JSONDocument, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.UniqueConstraint("pipeline", "version"),
)

pipeline_labels = sa.Table(
    "pipeline_labels",
    metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("label", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(
        ["pipeline", "version"],
        ["pipeline_versions.pipeline", "pipeline_versions.version"],
        ondelete="CASCADE",
    ),
)

traces = sa.Table(
    "traces",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("correlation_id", sa.Text, nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("pipeline", sa.Text, nullable=True),
    sa.Column("pipeline_version", sa.Text, nullable=True),
    sa.Column("label", sa.Text, nullable=True),
    sa.Column("caller", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.Text, nullable=True),
    sa.Column("decision", sa.Text, nullable=True),
    sa.Column("start_ns", sa.BigInteger, nullable=False),
    sa.Column("end_ns", sa.BigInteger, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", ExactDecimal(), nullable=False),
    sa.Index(None, "start_ns"),
    sa.Index(None, "pipeline", "start_ns"),
)

spans = sa.Table(
    "spans",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("span_id", sa.String(16), primary_key=True),
    sa.Column("parent_span_id", sa.String(16), nullable=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("layer", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_message", sa.Text, nullable=True),
    sa.Column("start_ns", sa.BigInteger, nullable=False),
    sa.Column("end_ns", sa.BigInteger, nullable=False),
    sa.Column("input", sa.Text, nullable=True),
    sa.Column("output", sa.Text, nullable=True),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", ExactDecimal(), nullable=False),
    sa.Column("model", sa.Text, nullable=True),
    sa.Column("model_version", sa.Text, nullable=True),
    sa.Column("attributes", JSONDocument, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False, index=True),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=True),
    sa.Column("details", JSONDocument, nullable=False),
)

# --- evaluation: versioned datasets, runs and per-trial results -------------------------------

datasets = sa.Table(
    "datasets",
    metadata,
    # One row per immutable version; (name, version) is what users type as NAME@VERSION.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.UniqueConstraint("name", "version"),
)

dataset_items = sa.Table(
    "dataset_items",
    metadata,
    sa.Column(
        "dataset_id",
        sa.Integer,
        sa.ForeignKey("datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.String(200), nullable=False),
    sa.Column("input", JSONDocument, nullable=False),
    sa.Column("expected", JSONDocument, nullable=True),
    sa.Column("label", sa.Text, nullable=True),
    sa.Column("tags", JSONDocument, nullable=False),
    sa.Column("metadata", JSONDocument, nullable=False),
    sa.UniqueConstraint("dataset_id", "item_id"),
)

eval_runs = sa.Table(
    "eval_runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("config_key", sa.String(64), nullable=False, index=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("pipeline_version", sa.String(128), nullable=False),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("dataset_version", sa.Integer, nullable=False),
    sa.Column("repeats", sa.Integer, nullable=False),
    sa.Column("params", JSONDocument, nullable=False),
    sa.Column("evaluators", JSONDocument, nullable=False),
    sa.Column("models", JSONDocument, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("label", sa.String(64), nullable=True, index=True),
    sa.Column("summary", JSONDocument, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
)

eval_results = sa.Table(
    "eval_results",
    metadata,
    sa.Column(
        "run_id",
        sa.String(32),
        sa.ForeignKey("eval_runs.run_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("item_id", sa.String(200), primary_key=True),
    sa.Column("trial", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.Text, nullable=True),
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("output", JSONDocument, nullable=True),
    sa.Column("scores", JSONDocument, nullable=False),
    sa.Column("details", JSONDocument, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", ExactDecimal(), nullable=False),
    sa.Column("model_version", sa.Text, nullable=True),
)


# Answers held for human review by a guardrail policy (see keel.guardrails.review).
review_items = sa.Table(
    "review_items",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("pipeline_version", sa.Text, nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reasons", JSONDocument, nullable=False),
    sa.Column("result", JSONDocument, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("deadline", UTCDateTime(), nullable=False),
    sa.Column("default_action", sa.String(16), nullable=False),
    sa.Column("webhook", sa.Text, nullable=True),
    sa.Column("decided_at", UTCDateTime(), nullable=True),
    sa.Column("decided_by", sa.Text, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Index(None, "status", "deadline"),
)


api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("scopes", JSONDocument, nullable=False),
    sa.Column("groups", JSONDocument, nullable=False),
    sa.Column("limits", JSONDocument, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)


# --- feedback: user feedback, the shared-feedback queue, sampled reviews, online scores -------

# Feedback on a trace: one row per (trace, user, kind). ``user_id`` is the API key's caller,
# plus "/<end user>" when the application names its end user.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("trace_id", sa.String(32), nullable=False, index=True),
    sa.Column("pipeline", sa.Text, nullable=True),
    sa.Column("pipeline_version", sa.Text, nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", JSONDocument, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("caller", sa.Text, nullable=False),
    sa.Column("end_user", sa.Text, nullable=True),
    sa.Column("overrides", sa.Boolean, nullable=True),
    sa.Column("automated", JSONDocument, nullable=True),
    sa.Column("share", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("trace_id", "user_id", "kind"),
    sa.Index(None, "user_id", "created_at"),
    sa.Index(None, "pipeline", "created_at"),
)

# Shared conversations on their way to an evaluation dataset: scrubbed of PII, screened for
# abuse and pranks, then approved or rejected by a person.
feedback_queue = sa.Table(
    "feedback_queue",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("feedback_id", sa.String(32), nullable=False, unique=True),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("pipeline", sa.Text, nullable=True),
    sa.Column("pipeline_version", sa.Text, nullable=True),
    sa.Column("input", JSONDocument, nullable=False),
    sa.Column("output", JSONDocument, nullable=True),
    sa.Column("label", sa.Text, nullable=True),
    sa.Column("expected", JSONDocument, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("flags", JSONDocument, nullable=False),
    sa.Column("pii", JSONDocument, nullable=False),
    sa.Column("submitted_by", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("decided_by", sa.Text, nullable=True),
    sa.Column("decided_at", UTCDateTime(), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("dataset", sa.Text, nullable=True),
    sa.Column("dataset_version", sa.Integer, nullable=True),
    sa.Index(None, "status", "created_at"),
)

# A random share of production answers, for reviewers to mark correct or incorrect.
# (Held answers live in review_items: they block the caller and have deadlines.)
review_samples = sa.Table(
    "review_samples",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("trace_id", sa.String(32), nullable=False, unique=True),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("pipeline_version", sa.Text, nullable=False),
    sa.Column("input", JSONDocument, nullable=True),
    sa.Column("result", JSONDocument, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("reviewed_by", sa.Text, nullable=True),
    sa.Column("reviewed_at", UTCDateTime(), nullable=True),
    sa.Column("correction", JSONDocument, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Index(None, "pipeline", "created_at"),
    sa.Index(None, "status", "created_at"),
)

# Scores of online evaluators on sampled production traces: one row per trace and metric.
online_scores = sa.Table(
    "online_scores",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("metric", sa.String(200), primary_key=True),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("pipeline_version", sa.Text, nullable=False),
    sa.Column("evaluator", sa.Text, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "pipeline", "pipeline_version", "created_at"),
)

# Alerts raised by SLO burn rates, drift checks and other conditions: one row per episode,
# firing until resolved. ``open_key`` holds the alert key while the episode fires and is
# cleared when it resolves; its unique constraint lets only one replica open an episode.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("key", sa.Text, nullable=False, index=True),
    sa.Column("open_key", sa.Text, nullable=True, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("pipeline", sa.Text, nullable=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("details", JSONDocument, nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    sa.Column("notifications", JSONDocument, nullable=False),
    sa.Index(None, "status", "started_at"),
)

# Usage per hour, API key, pipeline and model: what was billed and what the cache saved.
usage_hourly = sa.Table(
    "usage_hourly",
    metadata,
    sa.Column("hour", UTCDateTime(), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("cache_hits", sa.BigInteger, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", ExactDecimal(), nullable=False),
    sa.Column("saved_usd", ExactDecimal(), nullable=False),
    sa.PrimaryKeyConstraint("hour", "key_id", "pipeline", "model"),
)

# --- deployments: rollouts per pipeline endpoint (see keel.deploy) ---------------------------

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    # The pipeline's name while the deployment is active, NULL once it ends: the unique
    # constraint is what refuses a second active rollout on one endpoint, atomically.
    sa.Column("active_pipeline", sa.String(200), nullable=True, unique=True),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("stable", sa.String(128), nullable=False),
    # The first candidate; ``candidates`` lists them all (NULL on rows from before
    # deploy_2 that were never migrated: read as [candidate]).
    sa.Column("candidate", sa.String(128), nullable=False),
    sa.Column("candidates", JSONDocument, nullable=True),
    sa.Column("weights", JSONDocument, nullable=False),
    sa.Column("config", JSONDocument, nullable=False),
    sa.Column("step_index", sa.Integer, nullable=False),
    sa.Column("step_started_at", UTCDateTime(), nullable=False),
    sa.Column("failed_checks", sa.Integer, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.Text, nullable=True),
)

deployment_events = sa.Table(
    "deployment_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "deployment_id",
        sa.String(32),
        sa.ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("weights", JSONDocument, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("evidence", JSONDocument, nullable=False),
)

# Shadowed requests: the stable answer and the candidate's to the same input, linked.
deployment_pairs = sa.Table(
    "deployment_pairs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "deployment_id",
        sa.String(32),
        sa.ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("pair_id", sa.String(32), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("baseline_trace_id", sa.String(32), nullable=True),
    sa.Column("candidate_trace_id", sa.String(32), nullable=True),
    # Which candidate answered the mirrored request (NULL before deploy_2: the first one).
    sa.Column("candidate_version", sa.String(128), nullable=True),
    sa.Column("baseline_score", sa.Float, nullable=True),
    sa.Column("candidate_score", sa.Float, nullable=True),
    sa.Column("baseline_latency_ms", sa.Float, nullable=True),
    sa.Column("candidate_latency_ms", sa.Float, nullable=True),
    sa.Column("candidate_error", sa.Text, nullable=True),
    sa.Index(None, "deployment_id", "at"),
)
