"""Sentences that name people and events, as the pages show them."""

from __future__ import annotations

from markupsafe import Markup, escape


def with_names(sentence: str, *names: str) -> Markup:
    """Return a sentence of our own whose `{}` are names people typed, each escaped and set
    apart in <bdi>, so that a name in any script reads in its own direction ("Not نور 2?").

    For messages flashed to the next page: the session keeps them as markup.
    """
    # The sentence is escaped too: only the <bdi> around each name is markup.
    return escape(sentence).format(*(Markup("<bdi>{}</bdi>").format(name) for name in names))
