"""Initial read models: every table of ledger.projections.sql.schema as first released.

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 08:17:37.949605
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_daily_pnl',
    sa.Column('agent', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('net_pnl_e6', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('agent', 'day'),
    sqlite_with_rowid=False
    )
    op.create_table('agent_kpis',
    sa.Column('agent', sa.String(length=64), nullable=False),
    sa.Column('volume_e6', sa.BigInteger(), nullable=False),
    sa.Column('fees_paid_e6', sa.BigInteger(), nullable=False),
    sa.Column('realized_pnl_e6', sa.BigInteger(), nullable=False),
    sa.Column('funding_paid_e6', sa.BigInteger(), nullable=False),
    sa.Column('funding_received_e6', sa.BigInteger(), nullable=False),
    sa.Column('liquidation_penalty_e6', sa.BigInteger(), nullable=False),
    sa.Column('keeper_rewards_e6', sa.BigInteger(), nullable=False),
    sa.Column('net_pnl_e6', sa.BigInteger(), nullable=False),
    sa.Column('net_pnl_peak_e6', sa.BigInteger(), nullable=False),
    sa.Column('max_drawdown_e6', sa.BigInteger(), nullable=False),
    sa.Column('positions_opened', sa.Integer(), nullable=False),
    sa.Column('positions_ended', sa.Integer(), nullable=False),
    sa.Column('positions_won', sa.Integer(), nullable=False),
    sa.Column('win_rate_bps', sa.Integer(), nullable=True),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('sharpe_daily', sa.Float(), nullable=True),
    sa.Column('quotes_submitted', sa.Integer(), nullable=False),
    sa.Column('quotes_filled', sa.Integer(), nullable=False),
    sa.Column('quotes_stood', sa.Integer(), nullable=False),
    sa.Column('quotes_pulled', sa.Integer(), nullable=False),
    sa.Column('quotes_expired', sa.Integer(), nullable=False),
    sa.Column('fill_ratio_bps', sa.Integer(), nullable=True),
    sa.Column('reliability_bps', sa.Integer(), nullable=True),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('agent'),
    sqlite_with_rowid=False
    )
    op.create_table('agents',
    sa.Column('agent', sa.String(length=64), nullable=False),
    sa.Column('first_seq', sa.BigInteger(), nullable=False),
    sa.Column('first_ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('free_e6', sa.BigInteger(), nullable=False),
    sa.Column('held_e6', sa.BigInteger(), nullable=False),
    sa.Column('deposited_e6', sa.BigInteger(), nullable=False),
    sa.Column('withdrawn_e6', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('agent'),
    sqlite_with_rowid=False
    )
    op.create_table('closes',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('position_id', sa.BigInteger(), nullable=False),
    sa.Column('agent', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('fraction_bps', sa.Integer(), nullable=False),
    sa.Column('price_e8', sa.BigInteger(), nullable=False),
    sa.Column('closed_size_e6', sa.BigInteger(), nullable=False),
    sa.Column('remaining_size_e6', sa.BigInteger(), nullable=False),
    sa.Column('funding_long_to_short_e6', sa.BigInteger(), nullable=False),
    sa.Column('pnl_long_e6', sa.BigInteger(), nullable=False),
    sa.Column('insurance_e6', sa.BigInteger(), nullable=False),
    sa.Column('bad_debt_e6', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_table('fills',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('position_id', sa.BigInteger(), nullable=False),
    sa.Column('market', sa.SmallInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('agent', sa.String(length=64), nullable=False),
    sa.Column('price_e8', sa.BigInteger(), nullable=False),
    sa.Column('size_e6', sa.BigInteger(), nullable=False),
    sa.Column('remaining_size_e6', sa.BigInteger(), nullable=False),
    sa.Column('pnl_long_e6', sa.BigInteger(), nullable=False),
    sa.Column('funding_long_to_short_e6', sa.BigInteger(), nullable=False),
    sa.Column('fee_e6', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('fills', schema=None) as batch_op:
        batch_op.create_index('ix_fills_position', ['position_id'], unique=False)

    op.create_table('funding_payments',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('position_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('boundary_ns', sa.BigInteger(), nullable=True),
    sa.Column('payer', sa.String(length=64), nullable=False),
    sa.Column('receiver', sa.String(length=64), nullable=False),
    sa.Column('amount_e6', sa.BigInteger(), nullable=False),
    sa.Column('long_to_short_e6', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'position_id'),
    sqlite_with_rowid=False
    )
    op.create_table('liquidations',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('position_id', sa.BigInteger(), nullable=False),
    sa.Column('market', sa.SmallInteger(), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('liquidated_agent', sa.String(length=64), nullable=False),
    sa.Column('counterparty', sa.String(length=64), nullable=False),
    sa.Column('keeper', sa.String(length=64), nullable=False),
    sa.Column('by_engine', sa.Boolean(), nullable=False),
    sa.Column('price_e8', sa.BigInteger(), nullable=False),
    sa.Column('oracle_stale', sa.Boolean(), nullable=False),
    sa.Column('size_e6', sa.BigInteger(), nullable=False),
    sa.Column('funding_long_to_short_e6', sa.BigInteger(), nullable=False),
    sa.Column('pnl_long_e6', sa.BigInteger(), nullable=False),
    sa.Column('insurance_e6', sa.BigInteger(), nullable=False),
    sa.Column('bad_debt_e6', sa.BigInteger(), nullable=False),
    sa.Column('reward_e6', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_table('oracle_prices',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('market', sa.SmallInteger(), nullable=False),
    sa.Column('price_e8', sa.BigInteger(), nullable=False),
    sa.Column('conf_e8', sa.BigInteger(), nullable=False),
    sa.Column('publish_ns', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_table('positions',
    sa.Column('position_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('rfq_id', sa.BigInteger(), nullable=False),
    sa.Column('quote_id', sa.BigInteger(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('market', sa.SmallInteger(), nullable=False),
    sa.Column('market_symbol', sa.String(length=32), nullable=False),
    sa.Column('long_agent', sa.String(length=64), nullable=False),
    sa.Column('short_agent', sa.String(length=64), nullable=False),
    sa.Column('taker_side', sa.String(length=8), nullable=False),
    sa.Column('size_e6', sa.BigInteger(), nullable=False),
    sa.Column('open_size_e6', sa.BigInteger(), nullable=False),
    sa.Column('entry_price_e8', sa.BigInteger(), nullable=False),
    sa.Column('funding_rate_e9', sa.BigInteger(), nullable=False),
    sa.Column('margin_long_e6', sa.BigInteger(), nullable=False),
    sa.Column('margin_short_e6', sa.BigInteger(), nullable=False),
    sa.Column('taker_fee_e6', sa.BigInteger(), nullable=False),
    sa.Column('maker_fee_e6', sa.BigInteger(), nullable=False),
    sa.Column('duration', sa.String(length=16), nullable=False),
    sa.Column('expires_ns', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('exit_price_e8', sa.BigInteger(), nullable=True),
    sa.Column('ended_seq', sa.BigInteger(), nullable=True),
    sa.Column('ended_ts_ns', sa.BigInteger(), nullable=True),
    sa.Column('pnl_long_e6', sa.BigInteger(), nullable=False),
    sa.Column('funding_long_to_short_e6', sa.BigInteger(), nullable=False),
    sa.Column('reward_e6', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('position_id')
    )
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.create_index('ix_positions_long', ['long_agent', 'position_id'], unique=False)
        batch_op.create_index('ix_positions_short', ['short_agent', 'position_id'], unique=False)

    op.create_table('projection_checkpoints',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name'),
    sqlite_with_rowid=False
    )
    op.create_table('quotes',
    sa.Column('quote_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('rfq_id', sa.BigInteger(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('maker', sa.String(length=64), nullable=False),
    sa.Column('funding_rate_e9', sa.BigInteger(), nullable=False),
    sa.Column('collateral_e6', sa.BigInteger(), nullable=False),
    sa.Column('fee_e6', sa.BigInteger(), nullable=False),
    sa.Column('expires_ns', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('ended_seq', sa.BigInteger(), nullable=True),
    sa.Column('ended_ts_ns', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('quote_id')
    )
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.create_index('ix_quotes_maker', ['maker'], unique=False)

    op.create_table('rfqs',
    sa.Column('rfq_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('trader', sa.String(length=64), nullable=False),
    sa.Column('market', sa.SmallInteger(), nullable=False),
    sa.Column('market_symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('size_e6', sa.BigInteger(), nullable=False),
    sa.Column('leverage', sa.Integer(), nullable=False),
    sa.Column('max_funding_rate_e9', sa.BigInteger(), nullable=False),
    sa.Column('duration', sa.String(length=16), nullable=False),
    sa.Column('expires_ns', sa.BigInteger(), nullable=False),
    sa.Column('margin_e6', sa.BigInteger(), nullable=False),
    sa.Column('fee_e6', sa.BigInteger(), nullable=False),
    sa.Column('auto_accept', sa.Boolean(), nullable=False),
    sa.Column('target_rate_e9', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('quotes', sa.Integer(), nullable=False),
    sa.Column('ended_seq', sa.BigInteger(), nullable=True),
    sa.Column('ended_ts_ns', sa.BigInteger(), nullable=True),
    sa.Column('position_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('rfq_id')
    )
    op.create_table('system_accounts',
    sa.Column('account', sa.String(length=32), nullable=False),
    sa.Column('balance_e6', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('account'),
    sqlite_with_rowid=False
    )
    op.create_table('transfers',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ts_ns', sa.BigInteger(), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('debit_account', sa.String(length=16), nullable=False),
    sa.Column('debit_ref', sa.String(length=64), nullable=False),
    sa.Column('credit_account', sa.String(length=16), nullable=False),
    sa.Column('credit_ref', sa.String(length=64), nullable=False),
    sa.Column('amount_e6', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'idx'),
    sqlite_with_rowid=False
    )


def downgrade() -> None:
    op.drop_table('transfers')
    op.drop_table('system_accounts')
    op.drop_table('rfqs')
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.drop_index('ix_quotes_maker')

    op.drop_table('quotes')
    op.drop_table('projection_checkpoints')
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.drop_index('ix_positions_short')
        batch_op.drop_index('ix_positions_long')

    op.drop_table('positions')
    op.drop_table('oracle_prices')
    op.drop_table('liquidations')
    op.drop_table('funding_payments')
    with op.batch_alter_table('fills', schema=None) as batch_op:
        batch_op.drop_index('ix_fills_position')

    op.drop_table('fills')
    op.drop_table('closes')
    op.drop_table('agents')
    op.drop_table('agent_kpis')
    op.drop_table('agent_daily_pnl')
