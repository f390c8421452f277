"""communities: an organiser's recurring series of events

Revision ID: 6c1d9e3b5a27
Revises: b7e4d2a91c35
Create Date: 2026-11-30 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6c1d9e3b5a27'
down_revision = 'b7e4d2a91c35'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'community',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organiser_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['organiser_id'], ['organiser.id'],
            name=op.f('fk_community_organiser_id_organiser'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_community')),
    )
    with op.batch_alter_table('community', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_community_organiser_id'), ['organiser_id'], unique=False)
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('community_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_event_community_id'), ['community_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_event_community_id_community'), 'community',
            ['community_id'], ['id'], ondelete='SET NULL',
        )


def downgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_event_community_id_community'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_event_community_id'))
        batch_op.drop_column('community_id')
    with op.batch_alter_table('community', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_community_organiser_id'))
    op.drop_table('community')
