"""Model registry: registered models, versions, their stored formats, tags, aliases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=f"fk_{table}_{column}_{referred}")


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "key", name="pk_registered_model_tags"),
        _fk("registered_model_tags", "model_id", "registered_models.id"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("flavor", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("environment", sa.Text(), nullable=False),
        sa.Column("input_example", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        _fk("model_versions", "model_id", "registered_models.id"),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
    )
    op.create_table(
        "model_version_files",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("serialization", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version_id", "format", name="pk_model_version_files"),
        _fk("model_version_files", "version_id", "model_versions.id"),
    )
    op.create_table(
        "model_version_tags",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version_id", "key", name="pk_model_version_tags"),
        _fk("model_version_tags", "version_id", "model_versions.id"),
    )
    op.create_table(
        "model_version_datasets",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("dataset_version_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "version_id", "dataset_version_id", name="pk_model_version_datasets"
        ),
        _fk("model_version_datasets", "version_id", "model_versions.id"),
        _fk("model_version_datasets", "dataset_version_id", "dataset_versions.id"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_model_aliases"),
        _fk("model_aliases", "model_id", "registered_models.id"),
        _fk("model_aliases", "version_id", "model_versions.id"),
    )


def downgrade() -> None:
    for table in (
        "model_aliases",
        "model_version_datasets",
        "model_version_tags",
        "model_version_files",
        "model_versions",
        "registered_model_tags",
        "registered_models",
    ):
        op.drop_table(table)
