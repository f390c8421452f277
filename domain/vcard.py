"""vCard 3.0 ("add to contacts") holding only what a connection shares with me."""

from __future__ import annotations

from dataclasses import dataclass, field

LINE_OCTETS = 75


@dataclass(frozen=True)
class Card:
    """The contact details to put in a vCard."""

    name: str
    email: str | None = None
    urls: list[str] = field(default_factory=list)
    note: str | None = None


def escape(value: str) -> str:
    """Escape a text value as RFC 2426 requires."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line into chunks of at most 75 octets, never splitting a character."""
    chunks: list[str] = []
    current = ""
    limit = LINE_OCTETS
    for char in line:
        if len((current + char).encode()) > limit:
            chunks.append(current)
            current = ""
            limit = LINE_OCTETS - 1  # continuation lines start with a space
        current += char
    chunks.append(current)
    return "\r\n ".join(chunks)


def vcard(card: Card) -> str:
    """Return a vCard 3.0 document with CRLF line endings."""
    parts = card.name.strip().rsplit(" ", 1)
    family, given = (parts[1], parts[0]) if len(parts) == 2 else ("", parts[0])
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"FN:{escape(card.name)}",
        f"N:{escape(family)};{escape(given)};;;",
    ]
    if card.email:
        lines.append(f"EMAIL;TYPE=INTERNET:{escape(card.email)}")
    lines.extend(f"URL:{escape(url)}" for url in card.urls)
    if card.note:
        lines.append(f"NOTE:{escape(card.note)}")
    lines.append("END:VCARD")
    return "".join(fold(line) + "\r\n" for line in lines)
