"""Identifiers read from files (recording and subject ids) are untrusted input.

They become file names (one ``.npy`` per recording in the epoch store), MLflow tags and table
keys, so an id may hold letters, digits, ``.``, ``_`` and ``-`` only, must start with a letter or
digit and may not contain ``..``: no path separators, no parent-directory steps, no control
characters. Anything else is refused with an error naming the source, never rewritten silently.
"""

from __future__ import annotations

import re

from epochstack.errors import InputDataError

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_id(value: object, source: object, field: str) -> str:
    """``value`` as a string, or an ``InputDataError`` naming ``source`` and ``field``."""
    text = "" if value is None else str(value)
    if not SAFE_ID.match(text) or ".." in text:
        raise InputDataError(
            source,
            f"{field} {text!r} is not a safe identifier (letters, digits, '.', '_' and '-' only, "
            "starting with a letter or digit, no '..', at most 128 characters).",
            f"rename the {field} in the source file.",
        )
    return text
