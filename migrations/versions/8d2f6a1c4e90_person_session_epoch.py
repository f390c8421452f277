"""person session epoch, so letting go of a phone ends every copy of its session

Revision ID: 8d2f6a1c4e90
Revises: 3e7a9c41d2b8
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8d2f6a1c4e90'
down_revision = '3e7a9c41d2b8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
