"""interest keys: tags are matched on a folded, stemmed key and shown as typed

Revision ID: 4b8e2d7f1a63
Revises: 8d2f6a1c4e90
Create Date: 2026-11-30 22:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

from domain.interest_keys import interest_key


# revision identifiers, used by Alembic.
revision = '4b8e2d7f1a63'
down_revision = '8d2f6a1c4e90'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('interest', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sa.String(length=40), nullable=True))
    interest = sa.table('interest', sa.column('id', sa.Integer), sa.column('name', sa.String),
                        sa.column('key', sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(interest.c.id, interest.c.name)).all()
    for interest_id, name in rows:
        connection.execute(
            interest.update().where(interest.c.id == interest_id).values(key=interest_key(name))
        )
    with op.batch_alter_table('interest', schema=None) as batch_op:
        batch_op.alter_column('key', existing_type=sa.String(length=40), nullable=False)
        batch_op.create_index(batch_op.f('ix_interest_key'), ['key'], unique=False)


def downgrade():
    with op.batch_alter_table('interest', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interest_key'))
        batch_op.drop_column('key')
