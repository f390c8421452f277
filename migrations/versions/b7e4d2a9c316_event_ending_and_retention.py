"""an event's thank-you note and retention, and when sending paused

Revision ID: b7e4d2a9c316
Revises: 9c4e1b7d2a63
Create Date: 2026-11-30 22:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e4d2a9c316'
down_revision = '9c4e1b7d2a63'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('thank_you_note', sa.String(length=600), server_default='', nullable=False)
        )
        batch_op.add_column(
            sa.Column('retention_days', sa.Integer(), server_default='90', nullable=False)
        )
        batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('sender_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('sender_state', schema=None) as batch_op:
        batch_op.drop_column('paused_at')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
        batch_op.drop_column('retention_days')
        batch_op.drop_column('thank_you_note')
