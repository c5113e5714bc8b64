"""Identifiers read from files (recording and subject ids) are untrusted input.

They become file names (one ``.npy`` per recording in the epoch store), MLflow tags and table
keys, so a stored id holds letters, digits, ``.``, ``_`` and ``-`` only, starts with a letter or
digit and contains no ``..``: no path separators, no parent-directory steps, no control
characters (:func:`check_id`, the last guard before a file is written).

Names as users write them (``Nacht Müller``, ``睡眠 記録``, ``ward/c02``) are made safe, not
refused (:func:`safe_id`): a readable ASCII slug (python-slugify's transliteration) and a short
hash of the original name, so two names never share a slug and the same name always gets the
same one. Only a name with a ``..`` path step (``../../x``), which can only mean to climb out
of a folder, and an empty name are refused.
"""

from __future__ import annotations

import hashlib
import logging
import re

from slugify import slugify

from epochstack.errors import InputDataError

logger = logging.getLogger(__name__)

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SLUG_CHARS = r"[^A-Za-z0-9._-]+"
_MAX_SLUG = 100  # slug characters kept before the hash (ids stay well under 128)


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


def safe_id(value: object, source: object, field: str) -> str:
    """``value`` unchanged when it is a safe id, else its slug plus a hash of the original
    (``Nacht Müller`` -> ``Nacht-Muller-1f0c3a9e``); an empty value or a ``..`` path step is an
    ``InputDataError`` naming ``source`` and ``field``."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise InputDataError(
            source, f"{field} is empty.", f"give every recording a non-empty {field}."
        )
    if ".." in re.split(r"[/\\]", text):
        raise InputDataError(
            source,
            f"{field} {text!r} climbs out of its folder ('..' path step); ids become file names.",
            f"rename the {field} in the source file (no '../').",
        )
    if SAFE_ID.match(text) and ".." not in text:
        return text
    slug = slugify(text, lowercase=False, separator="-", regex_pattern=_SLUG_CHARS)
    slug = re.sub(r"\.{2,}", ".", slug).lstrip("._-")[:_MAX_SLUG].rstrip("._-")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return check_id(f"{slug or field.split('_')[0]}-{digest}", source, field)


def safe_ids(source: object, **ids: object) -> tuple[dict[str, str], dict[str, str]]:
    """``safe_id`` of each named id (``recording_id=..., subject_id=...``), and the renames
    (safe id -> id as given) of those that changed."""
    safe = {field: safe_id(value, source, field) for field, value in ids.items()}
    return safe, {safe[field]: str(ids[field]) for field in ids if safe[field] != str(ids[field])}


def warn_renamed(renamed: dict[str, str], where: str) -> None:
    """One warning listing the first ids made safe (all of them are kept in ``where``)."""
    if renamed:
        shown = ", ".join(f"{old!r} -> {new!r}" for new, old in list(renamed.items())[:3])
        logger.warning(
            "%d recording/subject id(s) made safe for file names: %s%s (all in %s).",
            len(renamed),
            shown,
            ", ..." if len(renamed) > 3 else "",
            where,
        )
