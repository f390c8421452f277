"""The key an interest is matched on: how people mean a tag, not how they typed it.

"Marathons" and "marathon", "Café" and "cafe", "board games" and "Board Game", "running"
and "run" are one interest to the people who typed them. The key folds case and accents,
treats punctuation (hyphens and underscores too) as a space and stems each word with the
Snowball English stemmer, so plurals and word forms meet; the tag as typed is kept for
display. A "+" or "#" after a letter or digit is part of the name ("C++", "C#", "F#"), so it
is spelt out ("c plus plus", "c sharp") rather than folded away; invisible format characters
(zero-width spaces, bidi controls) are dropped.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

import snowballstemmer

from domain.db import like_anywhere
from domain.limits import INTEREST_MAX, NAME_KEY_MAX

_NOT_WORD = re.compile(r"[\W_]+")
# "+" and "#" that end a name: "C++", "C#", "F#", "A+" (not a leading "#" of a hashtag).
_NAMED_SIGNS = re.compile(r"(?<=[^\W_])[+#]+")
_SIGN_WORDS = {"+": "plus", "#": "sharp"}


def without_format_characters(text: str) -> str:
    """Return text without Unicode format characters (category Cf: zero-width, bidi, BOM)."""
    return "".join(char for char in text if unicodedata.category(char) != "Cf")


def _spell_signs(match: re.Match[str]) -> str:
    return " " + " ".join(_SIGN_WORDS[sign] for sign in match.group(0)) + " "


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
    visible = _NAMED_SIGNS.sub(_spell_signs, without_format_characters(text))
    decomposed = unicodedata.normalize("NFKD", visible.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", bare)).strip()


@functools.lru_cache(maxsize=4096)
def interest_key(tag: str) -> str:
    """Return the key two interests match on when people mean the same thing by them."""
    words = _fold(tag).split()
    if not words:
        # A tag of symbols alone (an emoji, "C++" without its letters) matches itself.
        bare = without_format_characters(tag)
        return unicodedata.normalize("NFKC", bare).casefold().strip()[:INTEREST_MAX]
    return " ".join(_stemmer().stemWords(words))[:INTEREST_MAX]


def name_key(name: str) -> str:
    """Return the form a name is searched on: "Élodie O'Brien" as "elodie o brien"."""
    return _fold(name)[:NAME_KEY_MAX]


def key_pattern(search: str) -> str:
    """Return the key a search term is matched on, as a LIKE pattern for any part of a key."""
    key = interest_key(search)
    return like_anywhere(key) if key else ""
