"""change versions for the live pages

Revision ID: 9c4e1b7d2a63
Revises: 4b8e2d7f1a63
Create Date: 2026-11-30 22:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9c4e1b7d2a63'
down_revision = '4b8e2d7f1a63'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'event_interest',
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('arrivals', sa.Integer(), server_default='0', nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['event.id'], name=op.f('fk_event_interest_event_id_event'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('event_id', 'key', name=op.f('pk_event_interest')),
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attendees_version', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('badge_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('listed_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index('ix_attendance_event_listed_version', ['event_id', 'listed_version'], unique=False)


def downgrade():
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.drop_index('ix_attendance_event_listed_version')
        batch_op.drop_column('listed_version')
        batch_op.drop_column('badge_version')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('attendees_version')
    op.drop_table('event_interest')
