"""Alembic environment: the conductor's models are the target metadata."""

from alembic import context

from conductor.db import models  # noqa: F401  (registers every table)
from conductor.db.base import Base
from conductor.db.migrate import run_migrations_online

run_migrations_online(context.config, Base.metadata)
