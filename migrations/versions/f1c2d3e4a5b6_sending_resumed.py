"""who lifted a pause on sending, and when

Revision ID: f1c2d3e4a5b6
Revises: f4c2a7d91e03
Create Date: 2026-12-01 01:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f1c2d3e4a5b6'
down_revision = 'f4c2a7d91e03'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sending_resumed',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('resumed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('organiser_email', sa.String(length=254), nullable=False),
        sa.Column('organiser_id', sa.Integer(), nullable=True),
        sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['organiser_id'], ['organiser.id'],
            name=op.f('fk_sending_resumed_organiser_id_organiser'), ondelete='SET NULL'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sending_resumed')),
    )
    with op.batch_alter_table('sending_resumed', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_sending_resumed_organiser_id'), ['organiser_id'], unique=False
        )
        batch_op.create_index(
            batch_op.f('ix_sending_resumed_resumed_at'), ['resumed_at'], unique=False
        )


def downgrade():
    with op.batch_alter_table('sending_resumed', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sending_resumed_resumed_at'))
        batch_op.drop_index(batch_op.f('ix_sending_resumed_organiser_id'))
    op.drop_table('sending_resumed')
