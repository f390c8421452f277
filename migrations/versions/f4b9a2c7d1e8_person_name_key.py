"""a person's name as searched: folded, so "elodie" finds "Élodie" on either engine

Revision ID: f4b9a2c7d1e8
Revises: e3a8c5f17b42
Create Date: 2026-12-01 01:50:00.000000

"""
from alembic import op
import sqlalchemy as sa

from domain.interest_keys import name_key


# revision identifiers, used by Alembic.
revision = 'f4b9a2c7d1e8'
down_revision = 'e3a8c5f17b42'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sa.String(length=320), server_default='',
                                      nullable=False))
    person = sa.table('person', sa.column('id', sa.Integer), sa.column('name', sa.String),
                      sa.column('name_key', sa.String))
    connection = op.get_bind()
    for person_id, name in connection.execute(sa.select(person.c.id, person.c.name)).all():
        connection.execute(
            person.update().where(person.c.id == person_id).values(name_key=name_key(name))
        )


def downgrade():
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('name_key')
