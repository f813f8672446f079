"""The metadata schema. Changes reach a database only through Alembic migrations.

Times are integer milliseconds since the epoch (MLflow's convention). Runs,
experiments and audit events are addressed by public ids; child tables refer
to runs by a compact integer key so the metric table and its index stay small.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

KEY_LENGTH = 250
NAME_LENGTH = 256
PATH_LENGTH = 1024

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("lifecycle", String(16), nullable=False, server_default="active"),
)

runs = Table(
    "runs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False, unique=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    # Set only for runs whose process promised heartbeats (the fluent API).
    Column("heartbeat_at", BigInteger, nullable=True),
    Column("parent_run_id", String(32), nullable=True),
    Column("created_by", String(NAME_LENGTH), nullable=False),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_parent", "parent_run_id"),
)


def _run_key_values(name: str) -> Table:
    """Params and tags share one shape: a run's key -> text value."""
    return Table(
        name,
        metadata,
        Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
        Column("key", String(KEY_LENGTH), primary_key=True),
        Column("value", Text, nullable=False),
    )


params = _run_key_values("params")
tags = _run_key_values("tags")

# SQLite turns NaN into NULL, so NaN travels as a flag beside a 0.0 value on
# every backend; +-inf are stored as themselves. A point is identified by all
# its fields (as in MLflow): the same point written twice, by a retried flush
# say, is stored once. Clustering on that key keeps one B-tree per point on
# SQLite instead of a table plus an index.
metrics = Table(
    "metrics",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("step", BigInteger, primary_key=True, autoincrement=False),
    Column("timestamp", BigInteger, primary_key=True, autoincrement=False),
    Column("value", Float(precision=53), primary_key=True),
    Column("is_nan", Boolean, primary_key=True),
    sqlite_with_rowid=False,
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Float(precision=53), nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("path", String(PATH_LENGTH), primary_key=True),
    Column("digest", String(71), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(32), nullable=False, unique=True),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(NAME_LENGTH), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("object_id", String(PATH_LENGTH), nullable=False),
    Column("payload", Text, nullable=False),
    Column("payload_digest", String(71), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_object", "object_type", "object_id"),
)

# One row: the chain's tip. Writers lock it, which serialises appends on every
# backend, and it anchors the chain so a truncated tail is detected.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("seq"),
)

# ------------------------------------------------------------------------- datasets

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    # The Parquet blob's sha256: equal rows and schema give equal bytes, hence one version.
    Column("digest", String(71), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("schema", Text, nullable=False),  # JSON
    Column("profile", Text, nullable=False),  # JSON
    Column("validation", Text, nullable=True),  # JSON report, when a contract was checked
    Column("contract_version", Integer, nullable=True),
    Column("status", String(16), nullable=False),  # "valid" or "warn"
    Column("source", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LENGTH), nullable=False),
    Column("run_id", String(32), nullable=True),
    UniqueConstraint("dataset_id", "version"),
    UniqueConstraint("dataset_id", "digest"),
)

dataset_contracts = Table(
    "dataset_contracts",
    metadata,
    Column("dataset_id", Integer, ForeignKey("datasets.id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("document", Text, nullable=False),  # YAML, as people read and edit it
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LENGTH), nullable=False),
)

# What a source file or folder looked like when it was registered: an unchanged
# source re-registers without being read again (size, times and inode, as DVC does).
dataset_sources = Table(
    "dataset_sources",
    metadata,
    Column("dataset_id", Integer, ForeignKey("datasets.id"), primary_key=True),
    Column("path", String(PATH_LENGTH), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("version_id", Integer, ForeignKey("dataset_versions.id"), nullable=False),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
)

# --------------------------------------------------------------------------- models

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    # The highest version number handed out. Incremented under the row's lock,
    # so concurrent registrations get consecutive numbers on every backend.
    Column("last_version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("key", String(NAME_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # "ready" or "archived"
    Column("description", Text, nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("signature", Text, nullable=True),  # JSON
    Column("environment", Text, nullable=False),  # JSON: python and package versions
    Column("input_example", Text, nullable=True),  # JSON records, a few rows
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LENGTH), nullable=False),
    UniqueConstraint("model_id", "version"),
)

# One row per stored format of a version: "native" (as logged) and, once
# exported, "onnx". Each is one verified blob.
model_version_files = Table(
    "model_version_files",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("format", String(16), primary_key=True),
    Column("serialization", String(16), nullable=False),  # skops, onnx, pickle
    Column("digest", String(71), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("meta", Text, nullable=False),  # JSON the loader needs (trusted types, class path)
    Column("created_at", BigInteger, nullable=False),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("key", String(NAME_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
)

# The dataset versions the training run had read when the model was logged,
# frozen with the version so its lineage never changes afterwards.
model_version_datasets = Table(
    "model_version_datasets",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(NAME_LENGTH), primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
)

# ---------------------------------------------------------------------------- users

# People and services that call a Shipyard server. There is no default user:
# the first is created with `shipyard users create` on the server's machine.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # "viewer", "editor" or "admin"
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LENGTH), nullable=False),
)

# API tokens, ``sy_<token_id>_<secret>``. Only a hash of the secret is kept:
# the token is shown once, when it is created, and cannot be read back.
tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Public and short: shown in listings and used to revoke; finds the row to compare.
    Column("token_id", String(32), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(NAME_LENGTH), nullable=True),  # a label, such as "ci"
    Column("hash", String(64), nullable=False),  # hex sha256 of the secret
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LENGTH), nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_tokens_user_id", "user_id"),
)

# ---------------------------------------------------------------------- deployments

# What a serving process answers for, kept in the store so the definition
# outlives the processes: the model URI (usually an alias, followed as it
# moves), an optional canary taking a share of traffic and an optional shadow
# that predicts on every request without answering.
deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False, unique=True),
    Column("model_uri", String(PATH_LENGTH), nullable=False),
    Column("canary_uri", String(PATH_LENGTH), nullable=True),
    Column("canary_percent", Float(precision=53), nullable=True),
    Column("shadow_uri", String(PATH_LENGTH), nullable=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LENGTH), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# ----------------------------------------------------------------------- monitoring

# A monitor watches one deployment's prediction log against a reference,
# window by window (by time or by row count).
monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False, unique=True),
    Column("deployment", String(NAME_LENGTH), nullable=False),
    Column("reference", String(PATH_LENGTH), nullable=False),  # e.g. dataset:credit@3
    Column("reference_digest", String(71), nullable=True),  # the prepared reference's blob
    Column("window_seconds", Integer, nullable=True),
    Column("window_rows", Integer, nullable=True),
    Column("columns", Text, nullable=True),  # JSON list, null for every input column
    Column("tests", Text, nullable=True),  # JSON: one test name or {column: test}
    Column("thresholds", Text, nullable=True),  # JSON: {column or test: threshold}
    Column("task", String(16), nullable=True),  # "classification" or "regression"
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LENGTH), nullable=False),
    Index("ix_monitors_deployment", "deployment"),
)

# One evaluated window. ``number`` orders windows: the window's start divided
# by its length for time windows, its ordinal for row windows. A window is
# evaluated once for drift; performance is evaluated again when more of its
# labels have arrived (``labelled`` counts them at the last evaluation).
monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("number", BigInteger, nullable=False),
    Column("start", BigInteger, nullable=False),  # ms, inclusive
    Column("end", BigInteger, nullable=False),  # ms, exclusive
    Column("rows", Integer, nullable=False),
    Column("labelled", Integer, nullable=False),
    Column("drift_share", Float(precision=53), nullable=True),
    Column("metrics", Text, nullable=True),  # JSON: live performance {name: value}
    Column("evaluated_at", BigInteger, nullable=False),
    UniqueConstraint("monitor_id", "number"),
)

# Per window and column: ``kind`` is "input" (a feature) or "prediction".
monitor_results = Table(
    "monitor_results",
    metadata,
    Column("window_id", Integer, ForeignKey("monitor_windows.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("column", String(NAME_LENGTH), primary_key=True),
    Column("test", String(32), nullable=False),
    Column("statistic", Float(precision=53), nullable=True),
    Column("p_value", Float(precision=53), nullable=True),
    Column("threshold", Float(precision=53), nullable=True),
    Column("drift", Boolean, nullable=True),
    Column("status", String(32), nullable=False),
)

# "drift_share > 0.3 for 2 windows", "roc_auc < 0.8": a rule on one monitor's
# per-window values, notifying a log line always and a webhook when given.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("metric", String(NAME_LENGTH), nullable=False),
    Column("op", String(2), nullable=False),  # <, <=, >, >=
    Column("threshold", Float(precision=53), nullable=False),
    Column("for_windows", Integer, nullable=False),
    Column("webhook_url", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(NAME_LENGTH), nullable=False),
    UniqueConstraint("monitor_id", "name"),
)

# An alert opens when its rule fires and closes when the rule stops firing.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", Integer, ForeignKey("alert_rules.id"), nullable=False),
    Column("status", String(16), nullable=False),  # "open" or "closed"
    Column("opened_at", BigInteger, nullable=False),
    Column("opened_window", BigInteger, nullable=False),  # monitor_windows.number
    Column("closed_at", BigInteger, nullable=True),
    Column("closed_window", BigInteger, nullable=True),
    Column("value", Float(precision=53), nullable=True),  # the value that opened it
    Column("message", Text, nullable=False),
    Column("notified_at", BigInteger, nullable=True),
    Column("notify_error", Text, nullable=True),
    Index("ix_alerts_rule_id", "rule_id"),
)
