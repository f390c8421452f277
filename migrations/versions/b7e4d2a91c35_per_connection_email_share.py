"""per-connection email share: each side may show its email to one connection

Revision ID: b7e4d2a91c35
Revises: b7e4d2a9c316
Create Date: 2026-11-30 22:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e4d2a91c35'
down_revision = 'b7e4d2a9c316'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('connection', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('low_shares_email', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column('high_shares_email', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table('connection', schema=None) as batch_op:
        batch_op.drop_column('high_shares_email')
        batch_op.drop_column('low_shares_email')
