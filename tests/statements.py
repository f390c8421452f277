"""Count the SQL statements a block of code sends to the database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa


class Statements:
    """The statements sent inside a `counting()` block, in order."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __len__(self) -> int:
        return len(self.sent)

    def __repr__(self) -> str:
        return "\n".join(f"{n}: {text}" for n, text in enumerate(self.sent, 1))


@contextlib.contextmanager
def counting() -> Iterator[Statements]:
    """Record every statement any engine runs inside the block, each BEGIN included.

    A transaction's BEGIN is counted once on either engine: SQLite's is sent by the app's
    own hook (domain/db.py), PostgreSQL's by the driver with the first statement.
    """
    statements = Statements()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            statements.sent.append(" ".join(statement.split())[:160])

    def begin(_conn: Any) -> None:
        statements.sent.append("BEGIN")

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    sa.event.listen(sa.engine.Engine, "begin", begin)
    try:
        yield statements
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
        sa.event.remove(sa.engine.Engine, "begin", begin)
