"""Text files from users' disks (CSV tables, ``.ts`` files): every parser error on one line.

pandas raises ``ParserError`` (a row with more fields than the header), ``UnicodeDecodeError``
(binary content, another encoding), ``EmptyDataError`` and ``OSError`` with long tracebacks;
:func:`read_csv_table` turns each into an ``InputDataError`` naming the file, the line where
pandas gives one, and a fix. A binary file (NUL bytes in its first 8 KiB) is named as such.
A table that is not UTF-8 but is valid Windows-1252 (what spreadsheets save on Windows) is read
as Windows-1252 with a warning saying so, not refused.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from epochstack.errors import InputDataError

logger = logging.getLogger(__name__)

BINARY_PROBE_BYTES = 8192
FALLBACK_ENCODING = "cp1252"
_SIGNATURES = {  # leading bytes of files often given by mistake
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a zip archive (an .xlsx workbook?)",
    b"\x89HDF": "an HDF5 file",
    b"\xd0\xcf\x11\xe0": "an Excel .xls workbook",
}


def check_text_file(path: Path, what: str, fix: str) -> None:
    """Refuse a missing file or a binary one (``what``: e.g. ``CSV``), naming the file."""
    if not path.is_file():
        raise InputDataError(path, "file not found.", fix)
    try:
        with path.open("rb") as file:
            head = file.read(BINARY_PROBE_BYTES)
    except OSError as error:
        raise InputDataError(
            path, f"cannot be read ({error.strerror or error}).", "check its permissions."
        ) from error
    kind = next((name for magic, name in _SIGNATURES.items() if head.startswith(magic)), None)
    if kind or b"\x00" in head:
        raise InputDataError(
            path,
            f"is {kind or 'a binary file'}, not a {what} text file.",
            f"export the data as {what} text (or point the parameter at the right file).",
        )


def read_csv_table(path: str | Path, what: str = "CSV table") -> pd.DataFrame:
    """``pd.read_csv(path)``; a missing, binary, empty or unparsable file is one
    ``InputDataError`` naming it (``what`` names the file's role in the messages)."""
    path = Path(path)
    check_text_file(path, "CSV", f"point the parameter at an existing {what}.")
    try:
        try:
            return pd.read_csv(path)
        except UnicodeDecodeError as utf8_error:
            try:
                table = pd.read_csv(path, encoding=FALLBACK_ENCODING)
            except UnicodeDecodeError:
                raise InputDataError(
                    path, f"is not UTF-8 text ({utf8_error}).", f"save the {what} as UTF-8."
                ) from utf8_error
            logger.warning(
                "%s: not UTF-8; read as Windows-1252 text (non-ASCII names such as 'Müller' may "
                "differ if it is another encoding). Save it as UTF-8 to be sure.",
                path,
            )
            return table
    except pd.errors.EmptyDataError as error:
        raise InputDataError(
            path, f"empty file (no header line in this {what}).", "write a header and the rows."
        ) from error
    except (pd.errors.ParserError, ValueError) as error:
        raise InputDataError(
            path,
            f"cannot be parsed as CSV: {_parser_problem(error)}",
            "give every row as many comma-separated fields as the header (quote text that "
            "holds commas).",
        ) from error
    except OSError as error:
        raise InputDataError(
            path, f"cannot be read ({error.strerror or error}).", "check the path."
        ) from error


def _parser_problem(error: Exception) -> str:
    """pandas' tokenizer message, said plainly (``line 13 has 8 fields, the header 7``)."""
    text = str(error).strip()
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        expected, line, seen = fields.groups()
        return f"line {line} has {seen} fields, the header {expected}."
    return text.removeprefix("Error tokenizing data. ").rstrip(".") + "."
