"""UEA/UCR ``.ts`` time-series classification files (one case = one epoch).

Written by hand: the libraries that read ``.ts`` (sktime, aeon) are heavy and not installed, and
the format is small: ``#`` comments, ``@tag value`` header lines, ``@data``, then one case per
line, dimensions separated by ``:``, values by ``,``, the class label last.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from epochstack.errors import InputDataError
from epochstack.signals.recording import EpochedRecording

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")


def read_uea_ts(
    path: str | Path, *, split: str, sfreq: float | None = None
) -> list[EpochedRecording]:
    """One single-epoch ``EpochedRecording`` per case, in file order.

    Cases are independent, so each is its own recording and subject (``f"{stem}_{i:05d}"``).
    Labels are required in the train file; a test file may be unlabelled (``@classLabel false``).
    Only equal-length series without missing values or timestamps are supported.
    """
    path = Path(path)
    if split not in SPLITS:
        raise InputDataError(
            path, f"split {split!r} is neither 'train' nor 'test'.", "pass split='train' or 'test'."
        )
    if not path.is_file():
        raise InputDataError(
            path, "file not found.", "set dataset.train_path/test_path to existing .ts files."
        )
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    header, data_lines, data_line_no = _split_header(path, lines)
    has_labels, classes = _class_labels(path, header)
    if split == "train" and not has_labels:
        raise InputDataError(
            path,
            "@classLabel false, but training needs labels.",
            "use a labelled train file (@classLabel true <classes>).",
        )
    _reject_unsupported(path, header)

    n_dims = _declared_dimensions(path, header)
    cases, labels = [], []
    for line_no, line in zip(data_line_no, data_lines, strict=True):
        values, label = _parse_case(path, line_no, line, has_labels, classes)
        if n_dims is None:
            n_dims = len(values)
        if len(values) != n_dims:
            raise InputDataError(
                path,
                f"line {line_no} has {len(values)} dimensions, the header/first case {n_dims}.",
                "fix the row or the @dimensions header.",
            )
        cases.append(values)
        labels.append(label)

    lengths = {len(v) for case in cases for v in case}
    if len(lengths) > 1:
        raise InputDataError(
            path,
            f"series of unequal length ({min(lengths)}..{max(lengths)} points).",
            "resample or pad every case to one length before loading (epochs must be equal-length).",
        )
    length = lengths.pop()
    declared = header.get("serieslength")
    if declared is not None and declared.strip() != str(length):
        logger.warning(
            "%s: @seriesLength %s, but the cases have %d points; using %d.",
            path,
            declared,
            length,
            length,
        )

    stem = path.stem
    rate = 1.0 if sfreq is None else float(sfreq)
    return [
        EpochedRecording(
            recording_id=f"{stem}_{i:05d}",
            subject_id=f"{stem}_{i:05d}",
            epochs=np.asarray(case, dtype=np.float32)[np.newaxis],
            sfreq=rate,
            channel_names=[f"dim_{d}" for d in range(n_dims)],
            channel_types=["misc"] * n_dims,
            labels=np.array([label], dtype=object) if has_labels else None,
            source=str(path),
            source_split=split,
        )
        for i, (case, label) in enumerate(zip(cases, labels, strict=True))
    ]


def _split_header(path: Path, lines: list[str]) -> tuple[dict[str, str], list[str], list[int]]:
    """Header tags (lower-cased names -> raw value), the data lines and their 1-based numbers."""
    header: dict[str, str] = {}
    for i, raw_line in enumerate(lines):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise InputDataError(
                path,
                f"line {i + 1} is data before the @data line.",
                "add the header ending with @data before the cases.",
            )
        tag, _, value = line[1:].partition(" ")
        tag = tag.lower()
        if tag == "data":
            numbered = [
                (j + 1, text) for j, text in enumerate(lines[i + 1 :], start=i + 1) if text.strip()
            ]
            if not numbered:
                raise InputDataError(
                    path, "no cases after @data.", "add one case per line after @data."
                )
            line_numbers, data = zip(*numbered, strict=True)
            return header, list(data), list(line_numbers)
        header[tag] = value.strip()
    if not header:
        raise InputDataError(
            path, "empty file (no header, no cases).", "export the data set again in .ts format."
        )
    raise InputDataError(
        path, "no @data line: the header never ends.", "end the header with a line '@data'."
    )


def _class_labels(path: Path, header: dict[str, str]) -> tuple[bool, list[str] | None]:
    if "classlabel" not in header:
        raise InputDataError(
            path,
            "no @classLabel header.",
            "add '@classLabel true <class> <class> ...' (or '@classLabel false').",
        )
    flag, *classes = header["classlabel"].split()
    if flag.lower() not in ("true", "false"):
        raise InputDataError(
            path,
            f"@classLabel {flag!r} is neither true nor false.",
            "write '@classLabel true <classes>'.",
        )
    if flag.lower() == "false":
        return False, None
    if not classes:
        raise InputDataError(
            path, "@classLabel true lists no classes.", "list the class names after 'true'."
        )
    return True, classes


def _reject_unsupported(path: Path, header: dict[str, str]) -> None:
    for tag, fix in (
        ("timestamps", "export the series without timestamps (values only)."),
        ("missing", "impute the missing values ('?') before loading."),
    ):
        if header.get(tag, "false").lower() == "true":
            raise InputDataError(path, f"@{tag} true is not supported.", fix)
    if header.get("equallength", "true").lower() == "false":
        raise InputDataError(
            path,
            "@equalLength false: cases of different lengths are not supported.",
            "resample or pad every case to one length before loading (epochs must be equal-length).",
        )


def _declared_dimensions(path: Path, header: dict[str, str]) -> int | None:
    if "dimensions" in header:
        try:
            return int(header["dimensions"])
        except ValueError as error:
            raise InputDataError(
                path,
                f"@dimensions {header['dimensions']!r} is not an integer.",
                "write '@dimensions <n>'.",
            ) from error
    if header.get("univariate", "").lower() == "true":
        return 1
    return None


def _parse_case(
    path: Path, line_no: int, line: str, has_labels: bool, classes: list[str] | None
) -> tuple[list[np.ndarray], str | None]:
    fields = line.strip().split(":")
    label = None
    if has_labels:
        if len(fields) < 2:
            raise InputDataError(
                path, f"line {line_no} has no class label.", "end each case with ':<class>'."
            )
        *fields, label = fields
        label = label.strip()
        if label not in classes:
            raise InputDataError(
                path,
                f"line {line_no}: label {label!r} is not among @classLabel {classes}.",
                "fix the label or the header.",
            )
    values = []
    for field in fields:
        try:
            series = np.asarray(field.split(","), dtype=np.float64)
        except ValueError as error:
            raise InputDataError(
                path,
                f"line {line_no}: non-numeric value ({error}); missing values ('?') are not supported.",
                "impute missing values before loading.",
            ) from error
        if np.isnan(series).any():
            raise InputDataError(
                path, f"line {line_no}: NaN values.", "impute missing values before loading."
            )
        values.append(series)
    return values, label
