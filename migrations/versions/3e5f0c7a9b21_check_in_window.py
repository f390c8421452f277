"""check-in window: when the poster's form opens and closes

Revision ID: 3e5f0c7a9b21
Revises: c19be21dc179
Create Date: 2026-11-30 19:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3e5f0c7a9b21'
down_revision = 'c19be21dc179'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('checkin_opens_minutes', sa.Integer(), server_default='120', nullable=False)
        )
        batch_op.add_column(
            sa.Column('checkin_closes_minutes', sa.Integer(), server_default='360', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('checkin_closes_minutes')
        batch_op.drop_column('checkin_opens_minutes')
