"""interest keys keep "+" and "#" ("C++", "C#") and drop invisible characters

Revision ID: e3a8c5f17b42
Revises: 36a6e63cd7b5
Create Date: 2026-12-01 00:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

from domain.interest_keys import interest_key


# revision identifiers, used by Alembic.
revision = 'e3a8c5f17b42'
down_revision = '36a6e63cd7b5'
branch_labels = None
depends_on = None


def upgrade():
    # Only the keys change: each tag's key is worked out again by today's rules.
    interest = sa.table('interest', sa.column('id', sa.Integer), sa.column('name', sa.String),
                        sa.column('key', sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(interest.c.id, interest.c.name, interest.c.key)).all()
    for interest_id, name, key in rows:
        if interest_key(name) != key:
            connection.execute(
                interest.update().where(interest.c.id == interest_id)
                .values(key=interest_key(name))
            )


def downgrade():
    # The older keys folded "C++", "C#" and "C" together; the new keys serve it as well.
    pass
