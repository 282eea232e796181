"""Entities, tags, jobs and credentials.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "entities",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("iam_user", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=True),
        sa.Column("datasource_id", sa.String(64), nullable=True),
        sa.Column("mlmodel_id", sa.String(64), nullable=True),
        sa.Column("model_type", sa.String(16), nullable=True),
        sa.Column("algorithm", sa.String(16), nullable=True),
        sa.Column("endpoint_status", sa.String(16), nullable=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.UniqueConstraint("account", "kind", "entity_id", name="uq_entities_identity"),
    )
    op.create_index("ix_entities_account_kind_created", "entities", ["account", "kind", "created_at"])
    op.create_table(
        "tags",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(256), nullable=True),
        sa.UniqueConstraint("account", "kind", "entity_id", "key", name="uq_tags_key"),
    )
    op.create_table(
        "jobs",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_expires", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("account", "kind", "entity_id", name="uq_jobs_entity"),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_table(
        "credentials",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        sa.Column("secret_sealed", sa.Text, nullable=False),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )
