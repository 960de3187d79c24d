"""rpc replies keyed to the call; delivery counts left to the broker

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:40:00.000000

Stored replies only live for the retention window and the old rows carry no call key, so
a stored reply could not be matched to its call safely: the table is recreated empty
(a caller retrying across the upgrade runs its call again, as after the retention).
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_rpc_deliveries_updated_at', table_name='rpc_deliveries')
    op.drop_table('rpc_deliveries')
    op.drop_index('ix_rpc_replies_created_at', table_name='rpc_replies')
    op.drop_table('rpc_replies')
    op.create_table('rpc_replies',
    sa.Column('message_id', sa.String(length=128), nullable=False),
    sa.Column('method', sa.String(length=255), nullable=False),
    sa.Column('digest', sa.LargeBinary(length=16), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('broker_user', sa.String(length=255), nullable=True),
    sa.Column('reply', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_rpc_replies'))
    )
    op.create_index('ix_rpc_replies_created_at', 'rpc_replies', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_rpc_replies_created_at', table_name='rpc_replies')
    op.drop_table('rpc_replies')
    op.create_table('rpc_replies',
    sa.Column('message_id', sa.String(length=128), nullable=False),
    sa.Column('method', sa.String(length=255), nullable=False),
    sa.Column('reply', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_rpc_replies'))
    )
    op.create_index('ix_rpc_replies_created_at', 'rpc_replies', ['created_at'], unique=False)
    op.create_table('rpc_deliveries',
    sa.Column('message_id', sa.String(length=128), nullable=False),
    sa.Column('method', sa.String(length=255), nullable=False),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_rpc_deliveries'))
    )
    op.create_index('ix_rpc_deliveries_updated_at', 'rpc_deliveries', ['updated_at'], unique=False)
