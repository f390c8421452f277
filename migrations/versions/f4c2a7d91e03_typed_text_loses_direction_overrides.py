"""typed text saved before overrides were dropped loses them too

Revision ID: f4c2a7d91e03
Revises: f4b9a2c7d1e8
Create Date: 2026-12-01 01:55:00.000000

"""
from alembic import op
import sqlalchemy as sa

from domain.interest_keys import name_key
from domain.profile import without_direction_controls


# revision identifiers, used by Alembic.
revision = 'f4c2a7d91e03'
down_revision = 'f4b9a2c7d1e8'
branch_labels = None
depends_on = None

# The typed text the forms now clean, by table; a name is never left empty.
TYPED = {
    'person': ('name', 'about', 'talk_about'),
    'organiser': ('name',),
    'community': ('name', 'description'),
    'event': ('name', 'venue', 'description', 'thank_you_note'),
    'connection': ('low_note', 'high_note'),
}
OVERRIDES = [chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
UNNAMED = 'Unnamed'


def upgrade():
    # Names and notes typed earlier keep their overrides on every badge, list and email,
    # and a returning person's one tap or sign-in link carries them to the next event.
    connection = op.get_bind()
    for table_name, columns in TYPED.items():
        for column in columns:
            keyed = table_name == 'person' and column == 'name'  # its search key follows it
            table = sa.table(table_name, sa.column('id', sa.Integer), sa.column(column, sa.String),
                             *([sa.column('name_key', sa.String)] if keyed else []))
            value = table.c[column]
            rows = connection.execute(
                sa.select(table.c.id, value).where(sa.or_(*(value.contains(c) for c in OVERRIDES)))
            ).all()
            for row_id, text in rows:
                cleaned = without_direction_controls(text).strip()
                if not cleaned and column == 'name':
                    cleaned = UNNAMED
                values = {column: cleaned, **({'name_key': name_key(cleaned)} if keyed else {})}
                connection.execute(table.update().where(table.c.id == row_id).values(values))


def downgrade():
    # What was taken out only ever made text read otherwise than it was typed.
    pass
