"""UEA/UCR ``.ts`` time-series classification files (one case = one epoch).

The parser is written by hand: aeon's ``load_from_ts_file`` reads the format too, but its
errors name neither the line nor a fix, and the format is small: ``#`` (or ARFF's ``%``)
comments, ``@tag value`` header lines (space or tab), ``@data``, then one case per line,
dimensions separated by ``:``, values by ``,``, the class label last. Unequal-length cases
(``@equalLength false``) are brought to one length with aeon's ``Resizer`` / ``Padder`` /
``Truncator`` (``dataset.uea.unequal_length``); a warning says how many and how.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from epochstack.errors import InputDataError
from epochstack.io.tables import check_text_file
from epochstack.signals.preprocessing import channel_indices
from epochstack.signals.recording import EpochedRecording

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
UNEQUAL_LENGTH = ("resample", "pad", "truncate", "error")
# Length every case is brought to, from the training cases' lengths.
_TARGET_LENGTH = {"resample": np.median, "pad": np.max, "truncate": np.min, "error": np.max}


def read_uea_pair(
    train_path: str | Path,
    test_path: str | Path,
    *,
    sfreq: float | None = None,
    channels: list[str] | None = None,
    unequal_length: str = "resample",
) -> list[EpochedRecording]:
    """The training cases, then the test cases at the training length (see ``read_uea_ts``).

    The same file given as train and test is refused: the held-out set would be training data.
    """
    train_path, test_path = Path(train_path), Path(test_path)
    if train_path.is_file() and test_path.is_file() and train_path.samefile(test_path):
        raise InputDataError(
            "dataset.test_path",
            f"is the same file as dataset.train_path ({train_path}): the held-out test set "
            "would be the training data.",
            "point dataset.test_path at the <Name>_TEST.ts file.",
        )
    train = read_uea_ts(
        train_path, split="train", sfreq=sfreq, channels=channels, unequal_length=unequal_length
    )
    length = train[0].epochs.shape[2]
    test = read_uea_ts(
        test_path,
        split="test",
        sfreq=sfreq,
        channels=channels,
        unequal_length=unequal_length,
        length=length,
    )
    _warn_on_pairing(train_path, test_path, train, test)
    return train + test


def _warn_on_pairing(
    train_path: Path, test_path: Path, train: list[EpochedRecording], test: list[EpochedRecording]
) -> None:
    """Warn when nothing but the parameters tells the train file from the test file (one
    stem, no ``_TRAIN``/``_TEST``), and when test cases repeat training cases exactly."""
    if train_path.stem.lower() == test_path.stem.lower():
        logger.warning(
            "dataset.train_path %s and dataset.test_path %s have the same stem %r: the cases "
            "are told apart by split only (%s, %s); check that the second is the held-out set.",
            train_path,
            test_path,
            train_path.stem,
            train[0].recording_id,
            test[0].recording_id,
        )
    seen = {case.epochs.tobytes() for case in train}
    repeated = sum(case.epochs.tobytes() in seen for case in test)
    if repeated:
        logger.warning(
            "%s: %d of %d test cases are identical to training cases of %s; the held-out "
            "scores count them as unseen.",
            test_path,
            repeated,
            len(test),
            train_path,
        )


def read_uea_ts(
    path: str | Path,
    *,
    split: str,
    sfreq: float | None = None,
    channels: list[str] | None = None,
    unequal_length: str = "resample",
    length: int | None = None,
) -> list[EpochedRecording]:
    """One single-epoch ``EpochedRecording`` per case, in file order.

    Cases are independent, so each is its own recording and subject, ``<name>_<split>_<i:05d>``
    (``<name>``: the file stem without ``_TRAIN``/``_TEST``, so train and test ids never
    collide). Labels are required in the train file; a test file may be unlabelled
    (``@classLabel false``). ``channels`` picks dimensions by name (``dim_0``, ``dim_1``...).
    Cases of another length than ``length`` (default: this file's median, maximum or minimum
    length for ``unequal_length`` = resample, pad, truncate) are resampled (linear
    interpolation), zero-padded at the end or cut; ``error`` refuses them. Missing values and
    timestamps are not supported.
    """
    path = Path(path)
    _check_arguments(path, split, unequal_length)
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
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
        if len({len(v) for v in values}) > 1:
            raise InputDataError(
                path,
                f"line {line_no}: its dimensions have different lengths "
                f"({', '.join(str(len(v)) for v in values)} points).",
                "give every dimension of a case the same number of points.",
            )
        cases.append(np.asarray(values))
        labels.append(label)

    names = [f"dim_{d}" for d in range(n_dims)]
    if channels:
        picked = channel_indices(channels, names, path)
        cases, names = [case[picked] for case in cases], [names[i] for i in picked]
    epochs = _equal_length(path, header, cases, split, unequal_length, length)
    problem = re.sub(r"_(train|test)$", "", path.stem, flags=re.IGNORECASE)
    rate = 1.0 if sfreq is None else float(sfreq)
    return [
        EpochedRecording(
            recording_id=f"{problem}_{split}_{i:05d}",
            subject_id=f"{problem}_{split}_{i:05d}",
            epochs=epoch[np.newaxis],
            sfreq=rate,
            channel_names=list(names),
            channel_types=["misc"] * len(names),
            labels=np.array([label], dtype=object) if has_labels else None,
            source=str(path),
            source_split=split,
        )
        for i, (epoch, label) in enumerate(zip(epochs, labels, strict=True))
    ]


def _check_arguments(path: Path, split: str, unequal_length: str) -> None:
    """A known split and unequal-length policy, and an existing text file at ``path``."""
    if split not in SPLITS:
        raise InputDataError(
            path, f"split {split!r} is neither 'train' nor 'test'.", "pass split='train' or 'test'."
        )
    if unequal_length not in UNEQUAL_LENGTH:
        raise InputDataError(
            "dataset.uea.unequal_length",
            f"unknown value {unequal_length!r}.",
            f"use one of {list(UNEQUAL_LENGTH)}.",
        )
    if not path.is_file():
        raise InputDataError(
            path, "file not found.", "set dataset.train_path/test_path to existing .ts files."
        )
    check_text_file(path, ".ts", "set dataset.train_path/test_path to existing .ts files.")


def _equal_length(
    path: Path,
    header: dict[str, str],
    cases: list[np.ndarray],
    split: str,
    policy: str,
    length: int | None,
) -> np.ndarray:
    """Cases ``(n_dims, length_i)`` as one float32 array ``(n_cases, n_dims, length)``."""
    lengths = np.array([case.shape[1] for case in cases])
    target = int(round(_TARGET_LENGTH[policy](lengths))) if length is None else int(length)
    off = np.flatnonzero(lengths != target)
    if not len(off):
        declared = header.get("serieslength")
        if length is None and declared is not None and declared.strip() != str(target):
            logger.warning(
                "%s: @seriesLength %s, but the cases have %d points; using %d.",
                path,
                declared,
                target,
                target,
            )
        return np.stack(cases).astype(np.float32)
    if policy == "error":
        training = "" if length is None else f"; the training cases have {length}"
        raise InputDataError(
            path,
            f"cases of unequal length ({lengths.min()}..{lengths.max()} points{training}; "
            f"e.g. case {off[0] + 1} has {lengths[off[0]]}).",
            "set dataset.uea.unequal_length to resample, pad or truncate.",
        )
    from aeon.transformations.collection.unequal_length import Padder, Resizer, Truncator

    if policy == "resample":
        epochs = Resizer(resized_length=target).fit_transform(cases)
    else:  # pad and truncate differ in the target; a test case may need the other direction
        cut = Truncator(truncated_length=target, error_on_short=False).fit_transform(cases)
        epochs = Padder(padded_length=target, fill_value=0).fit_transform(cut)
    chosen = {
        "resample": "the median training length",
        "pad": "the longest training case",
        "truncate": "the shortest training case",
    }[policy]
    logger.warning(
        "%s: %d of %d %s cases (%d..%d points) %s to %d points, %s "
        "(dataset.uea.unequal_length=%s).",
        path,
        len(off),
        len(cases),
        split,
        lengths.min(),
        lengths.max(),
        {"resample": "resampled", "pad": "padded with zeros", "truncate": "cut"}[policy],
        target,
        chosen,
        policy,
    )
    wrong_way = lengths > target if policy == "pad" else lengths < target
    if policy != "resample" and wrong_way.any():
        logger.warning(
            "%s: %d %s case(s) %s than the training length %d were %s to it.",
            path,
            int(wrong_way.sum()),
            split,
            "longer" if policy == "pad" else "shorter",
            target,
            "cut" if policy == "pad" else "padded with zeros",
        )
    return np.asarray(epochs, dtype=np.float32)


def _split_header(path: Path, lines: list[str]) -> tuple[dict[str, str], list[str], list[int]]:
    """Header tags (lower-cased names -> raw value), the data lines and their 1-based numbers."""
    header: dict[str, str] = {}
    for i, raw_line in enumerate(lines):
        line = raw_line.strip()
        if not line or line.startswith(("#", "%")):
            continue
        if not line.startswith("@"):
            raise InputDataError(
                path,
                f"line {i + 1} is data before the @data line.",
                "add the header ending with @data before the cases.",
            )
        tag, _, value = re.sub(r"\s", " ", line[1:], count=1).partition(" ")  # space or tab
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
    if "classlabel" not in header and header.get("targetlabel", "").lower() == "true":
        raise InputDataError(
            path,
            "@targetLabel true: a regression problem (a number per case), not classes.",
            "use a classification file ('@classLabel true <class> ...'); epochstack classifies.",
        )
    if "classlabel" not in header:
        raise InputDataError(
            path,
            "no @classLabel header.",
            "add '@classLabel true <class> <class> ...' (or '@classLabel false').",
        )
    if not header["classlabel"]:
        raise InputDataError(
            path,
            "@classLabel has no value (expected true or false).",
            "write '@classLabel true <class> <class> ...' (or '@classLabel false').",
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
