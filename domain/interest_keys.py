"""The key an interest is matched on: how people mean a tag, not how they typed it.

"Marathons" and "marathon", "Café" and "cafe", "board games" and "Board Game", "running"
and "run" are one interest to the people who typed them. The key folds case and accents,
treats punctuation as a space and stems each word with the Snowball English stemmer, so
plurals and word forms meet; the tag as typed is kept for display.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

import snowballstemmer

from domain.limits import INTEREST_MAX

_NOT_WORD = re.compile(r"[\W_]+")


# A Snowball stemmer keeps the word it is working on in itself, so two threads sharing one
# (a threaded server's requests) garble each other's words: each thread has its own.
_local = threading.local()


def _stemmer() -> snowballstemmer.stemmer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


def _fold(text: str) -> str:
    """Return text case-folded, with accents and punctuation gone, words one space apart."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", bare)).strip()


@functools.lru_cache(maxsize=4096)
def interest_key(tag: str) -> str:
    """Return the key two interests match on when people mean the same thing by them."""
    words = _fold(tag).split()
    if not words:
        # A tag of symbols alone (an emoji, "C++" without its letters) matches itself.
        return unicodedata.normalize("NFKC", tag).casefold().strip()[:INTEREST_MAX]
    return " ".join(_stemmer().stemWords(words))[:INTEREST_MAX]


def key_pattern(search: str) -> str:
    """Return the key a search term is matched on, as a LIKE pattern for any part of a key."""
    key = interest_key(search)
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if key else ""
