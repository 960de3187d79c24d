"""instances.host trigram index for the regular-expression host filter (PostgreSQL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:12:00
"""

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None



def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index("ix_instances_host_trgm", "instances", ["host"], unique=False,
                    postgresql_using="gin", postgresql_ops={"host": "gin_trgm_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_instances_host_trgm", table_name="instances",
                  postgresql_using="gin")



