"""The hedger's audit trail (hedge_audit: one row per JSONL line) and its orders (hedge_orders).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:29:14.599133
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hedge_audit',
    sa.Column('log_id', sa.String(length=16), nullable=False),
    sa.Column('line_offset', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('line_bytes', sa.Integer(), nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('maker', sa.String(length=64), nullable=True),
    sa.Column('market', sa.SmallInteger(), nullable=True),
    sa.Column('exchange', sa.String(length=32), nullable=True),
    sa.Column('call', sa.String(length=32), nullable=True),
    sa.Column('cid', sa.String(length=40), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=True),
    sa.Column('error', sa.String(length=64), nullable=True),
    sa.Column('record', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('log_id', 'line_offset'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('hedge_audit', schema=None) as batch_op:
        batch_op.create_index('ix_hedge_audit_maker', ['maker', 'ts_ns'], unique=False)
        batch_op.create_index('ix_hedge_audit_ts', ['ts_ns'], unique=False)

    op.create_table('hedge_orders',
    sa.Column('cid', sa.String(length=40), nullable=False),
    sa.Column('maker', sa.String(length=64), nullable=False),
    sa.Column('market', sa.SmallInteger(), nullable=False),
    sa.Column('exchange', sa.String(length=32), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('qty_e9', sa.BigInteger(), nullable=False),
    sa.Column('price_e8', sa.BigInteger(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('sent_ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('filled_e9', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.String(length=64), nullable=True),
    sa.Column('updated_ts_ns', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('cid'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('hedge_orders', schema=None) as batch_op:
        batch_op.create_index('ix_hedge_orders_maker', ['maker', 'sent_ts_ns'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('hedge_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_hedge_orders_maker')

    op.drop_table('hedge_orders')
    with op.batch_alter_table('hedge_audit', schema=None) as batch_op:
        batch_op.drop_index('ix_hedge_audit_ts')
        batch_op.drop_index('ix_hedge_audit_maker')

    op.drop_table('hedge_audit')
