"""Finds token material in text: the check behind the suite-wide log guard.

A token leaks if any 17-character run of one of its segments (anything
longer than 16 characters, per the threat model), or of its signature in hex
or standard base64, appears in a log record or a response.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

WINDOW = 17


def _grams(texts: Iterable[str]) -> set[str]:
    grams: set[str] = set()
    for text in texts:
        grams.update(text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1))
    return grams


def _signature_forms(token: str) -> list[str]:
    segment = token.rsplit(".", 1)[-1]
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return []
    forms = [raw.hex(), base64.b64encode(raw).decode("ascii")]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        # Real signatures are never UTF-8; bytes that are (a mutated token
        # whose last segment is JSON) would only match the claims' own text.
        forms.append(repr(raw))
    return forms


def find_leaks(texts: Iterable[str], tokens: Iterable[str]) -> list[str]:
    """The tokens (shortened for the report) of which some part appears in ``texts``."""
    grams = _grams(texts)
    if not grams:
        return []
    leaked = []
    for token in tokens:
        pieces = [s for s in token.split(".") if len(s) >= WINDOW] + _signature_forms(token)
        if any(
            piece[i : i + WINDOW] in grams
            for piece in pieces
            for i in range(len(piece) - WINDOW + 1)
        ):
            leaked.append(token[:12] + "...")
    return leaked
