"""Deployments, monitors with their windows and results, alert rules and alerts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FLOAT = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("model_uri", sa.String(1024), nullable=False),
        sa.Column("canary_uri", sa.String(1024), nullable=True),
        sa.Column("canary_percent", _FLOAT, nullable=True),
        sa.Column("shadow_uri", sa.String(1024), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.UniqueConstraint("name", name="uq_deployments_name"),
    )
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("deployment", sa.String(256), nullable=False),
        sa.Column("reference", sa.String(1024), nullable=False),
        sa.Column("reference_digest", sa.String(71), nullable=True),
        sa.Column("window_seconds", sa.Integer(), nullable=True),
        sa.Column("window_rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Text(), nullable=True),
        sa.Column("tests", sa.Text(), nullable=True),
        sa.Column("thresholds", sa.Text(), nullable=True),
        sa.Column("task", sa.String(16), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitors"),
        sa.UniqueConstraint("name", name="uq_monitors_name"),
    )
    op.create_index("ix_monitors_deployment", "monitors", ["deployment"])
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("labelled", sa.Integer(), nullable=False),
        sa.Column("drift_share", _FLOAT, nullable=True),
        sa.Column("metrics", sa.Text(), nullable=True),
        sa.Column("evaluated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_windows"),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitors.id"], name="fk_monitor_windows_monitor_id_monitors"
        ),
        sa.UniqueConstraint("monitor_id", "number", name="uq_monitor_windows_monitor_id_number"),
    )
    op.create_table(
        "monitor_results",
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("column", sa.String(256), nullable=False),
        sa.Column("test", sa.String(32), nullable=False),
        sa.Column("statistic", _FLOAT, nullable=True),
        sa.Column("p_value", _FLOAT, nullable=True),
        sa.Column("threshold", _FLOAT, nullable=True),
        sa.Column("drift", sa.Boolean(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("window_id", "kind", "column", name="pk_monitor_results"),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["monitor_windows.id"],
            name="fk_monitor_results_window_id_monitor_windows",
        ),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("metric", sa.String(256), nullable=False),
        sa.Column("op", sa.String(2), nullable=False),
        sa.Column("threshold", _FLOAT, nullable=False),
        sa.Column("for_windows", sa.Integer(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_rules"),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitors.id"], name="fk_alert_rules_monitor_id_monitors"
        ),
        sa.UniqueConstraint("monitor_id", "name", name="uq_alert_rules_monitor_id_name"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("opened_window", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_window", sa.BigInteger(), nullable=True),
        sa.Column("value", _FLOAT, nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("notified_at", sa.BigInteger(), nullable=True),
        sa.Column("notify_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name="fk_alerts_rule_id_alert_rules"
        ),
    )
    op.create_index("ix_alerts_rule_id", "alerts", ["rule_id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_rule_id", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("alert_rules")
    op.drop_table("monitor_results")
    op.drop_table("monitor_windows")
    op.drop_index("ix_monitors_deployment", table_name="monitors")
    op.drop_table("monitors")
    op.drop_table("deployments")
