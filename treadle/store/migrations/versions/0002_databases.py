"""Databases registered for RDS and Redshift datasources.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "databases",
        sa.Column("identifier", sa.String(63), primary_key=True),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("url_sealed", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
