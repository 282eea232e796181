"""Claims on the objects jobs write into users' locations.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "output_claims",
        sa.Column("uri_sha256", sa.String(64), primary_key=True),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.Float, nullable=False),
    )
