"""Metadata tables. The schema itself is created and upgraded by Alembic
(see migrations/); these definitions are what the code queries through."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# One table for all four entity kinds: each row keeps its wire document as
# JSON plus copies of the fields Describe* can filter and sort on, so a single
# query path serves every Describe operation.
entities = sa.Table(
    "entities", metadata,
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

tags = sa.Table(
    "tags", metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("value", sa.String(256), nullable=True),
    sa.UniqueConstraint("account", "kind", "entity_id", "key", name="uq_tags_key"),
)

# The durable job queue: one row per entity that needs background work.
jobs = sa.Table(
    "jobs", metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # queued | running | done
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("lease_expires", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("account", "kind", "entity_id", name="uq_jobs_entity"),
)

credentials = sa.Table(
    "credentials", metadata,
    sa.Column("access_key_id", sa.String(32), primary_key=True),
    sa.Column("secret_sealed", sa.Text, nullable=False),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("user_name", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
)

# Databases the operator registered for RDS / Redshift datasources.
databases = sa.Table(
    "databases", metadata,
    sa.Column("identifier", sa.String(63), primary_key=True),
    sa.Column("engine", sa.String(16), nullable=False),  # rds | redshift
    sa.Column("url_sealed", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Objects jobs write into users' locations, each claimed by the one job
# that may write it (docs/behaviour.md, "Output locations are never
# overwritten by someone else's job"). Keyed by the URI's SHA-256: a URI can
# be longer than a PostgreSQL index entry may be.
output_claims = sa.Table(
    "output_claims", metadata,
    sa.Column("uri_sha256", sa.String(64), primary_key=True),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=False),
)

# Console sign-ins. The cookie holds a random token; only its SHA-256 is
# kept, so the table alone cannot be used to take over a session.
console_sessions = sa.Table(
    "console_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("user_name", sa.String(128), nullable=False),
    sa.Column("access_key_id", sa.String(32), nullable=True),  # None: --auth none
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)
