"""Parameters with a physical meaning, checked against the recordings' headers before any work.

A rate, a filter band, a resampling target or an epoch length that cannot fit the data would
otherwise surface deep inside scipy or numpy (``Digital filter critical frequencies must be
0 < Wn < fs/2``, ``Unable to allocate 13.1 TiB``) after minutes of work. Here each is compared
with what the recordings hold (:class:`~epochstack.signals.recording.Header`: rate, channels,
samples) and either refused with one ``InputDataError`` naming the parameter, or, where the
pipeline goes on with a changed step, announced by a warning naming the parameter and the change.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import psutil

from epochstack.errors import InputDataError
from epochstack.signals.recording import Header

logger = logging.getLogger(__name__)

# Sampling rates of physiological recordings (EEG/EMG/ECG/accelerometer/heart rate), in Hz.
PLAUSIBLE_HZ = (0.1, 100_000.0)
LOW_PASS_LIMIT = 0.99  # a low-pass at or above this fraction of Nyquist is not applied
MAX_RESAMPLE_DENOMINATOR = 1000  # see preprocessing.resample (Fraction.limit_denominator)
FLOAT32_BYTES = 4
# Peak memory of one worker beyond the recording's own float32 signals, measured with
# ru_maxrss on one synthetic night (data_engineering's _stage_one, 2026-12): resampling and
# filtering hold float64 copies and scipy's padded passes (26 bytes per sample and channel
# measured), epoching holds the epochs and temporaries of their size for the artefact flags,
# then the kept epochs (3.2 times the epochs measured).
FILTER_BYTES_PER_SAMPLE = 32
EPOCH_COPIES = 3.5


def check_against_data(
    headers: list[Header],
    preprocessing: dict,
    staging_dir: str | Path,
    *,
    n_parallel: int = 1,
    memory_bytes: int | None = None,
    free_disk_bytes: int | None = None,
) -> None:
    """Refuse parameters the recordings cannot satisfy; warn where a step will be skipped.

    ``preprocessing`` is the block the workers will apply (Hz-based steps already removed when
    the rate is unknown). What ``n_parallel`` workers need at once is compared with the
    machine's physical memory, the epoch store with the free disk under ``staging_dir``; both
    can be given for tests. Every problem found is named in one ``InputDataError``.
    """
    if not headers:
        return
    total = psutil.virtual_memory().total if memory_bytes is None else memory_bytes
    memory = total // max(1, n_parallel)  # what one worker may use
    counts = Counter(map(_shape_key, headers))
    distinct = list({_shape_key(h): h for h in reversed(headers)}.values())[::-1]
    warnings: dict[str, list[str]] = {}  # one warning per message, naming the first recording
    problems: dict[str, InputDataError] = {}
    resample_hz = preprocessing.get("resample_hz")
    _implausible_rates(distinct, resample_hz, warnings)
    window_fits = _attempt(problems, _check_window_fits_some, distinct, preprocessing)
    store_bytes = 0
    for header in distinct:
        _attempt(
            problems, _check_memory, header, header.sfreq, header.n_samples, None, memory, total
        )
        working = _attempt(problems, _working_rate, header, resample_hz, warnings)
        if working is None:
            continue
        rate, n_samples = working
        if rate > header.sfreq and not _attempt(
            problems, _check_memory, header, rate, n_samples, resample_hz, memory, total
        ):
            continue
        _check_filters(header, rate, preprocessing, warnings, problems)
        count = counts[_shape_key(header)]
        if header.epoched:
            store_bytes += count * FLOAT32_BYTES * header.n_epochs * header.n_channels * n_samples
        elif window_fits:
            epoch = preprocessing["epoch"]
            args = (header, rate, n_samples, epoch, memory, total)
            store_bytes += count * (_attempt(problems, _check_epochs, *args) or 0)
    if not problems:
        _attempt(
            problems, _check_disk, store_bytes, preprocessing["epoch"], staging_dir, free_disk_bytes
        )
    for message, sources in warnings.items():
        more = f" (and {len(sources) - 1} more recordings)" if len(sources) > 1 else ""
        logger.warning(message.replace("{source}", sources[0] + more))
    _raise_all(list(problems.values()))


def _attempt(problems: dict[str, InputDataError], check, *args):
    """``check(*args)``, or ``None`` with its ``InputDataError`` kept in ``problems``; a check
    without a result gives ``True`` when it passes."""
    try:
        result = check(*args)
    except InputDataError as error:
        problems.setdefault(str(error), error)
        return None
    return True if result is None else result


def _raise_all(problems: list[InputDataError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InputDataError(
            "parameters",
            "; ".join(f"{e.source}: {e.problem.rstrip('.')}" for e in problems) + ".",
            " / ".join(dict.fromkeys(e.fix for e in problems if e.fix)),
        )


def _warn(warnings: dict[str, list[str]], source: str, message: str) -> None:
    """Collect ``message`` (``{source}`` marks where the recording goes) for ``source``."""
    sources = warnings.setdefault(message, [])
    if source not in sources:
        sources.append(source)


def _shape_key(header: Header) -> tuple:
    return (
        header.sfreq,
        header.n_channels,
        header.n_samples,
        header.channel_types,
        header.epoched,
        header.n_epochs,
        header.rate_parameter,
    )


def _size(n_bytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes / 1e3:.1f} kB"


def _implausible_rates(headers: list[Header], resample_hz: float | None, warnings) -> None:
    low, high = PLAUSIBLE_HZ
    rates = [(h.rate_parameter, h.source, h.sfreq) for h in headers]
    if resample_hz:
        rates.append(("preprocessing.resample_hz", "", float(resample_hz)))
    for parameter, source, rate in rates:
        if not low <= rate <= high:
            _warn(
                warnings,
                source,
                f"{parameter or '{source}'}: a sampling rate of {rate:g} Hz is outside "
                f"{low:g} Hz..{high / 1000:g} kHz, the range of physiological recordings; check "
                "its unit (Hz, not kHz or seconds per sample).",
            )


def _working_rate(header: Header, resample_hz: float | None, warnings) -> tuple[float, int]:
    """The rate and number of samples the filters and epochs will see (after resampling)."""
    if header.epoched or not resample_hz or np.isclose(resample_hz, header.sfreq):
        if header.epoched and resample_hz and not np.isclose(resample_hz, header.sfreq):
            _warn(
                warnings,
                header.source,
                f"preprocessing.resample_hz={resample_hz:g} Hz is not applied to {{source}}: its "
                f"cases are epochs already (kept at {header.sfreq:g} Hz).",
            )
        return header.sfreq, header.n_samples
    ratio = Fraction(float(resample_hz) / header.sfreq).limit_denominator(MAX_RESAMPLE_DENOMINATOR)
    if ratio == 0:
        raise InputDataError(
            "preprocessing.resample_hz",
            f"{resample_hz:g} Hz is below 1/{MAX_RESAMPLE_DENOMINATOR} of the rate of "
            f"{header.source} ({header.sfreq:g} Hz): nothing would be left of the signals.",
            "set preprocessing.resample_hz to a rate that keeps the frequencies of interest "
            "(e.g. 100 for sleep EEG) or null.",
        )
    return header.sfreq * float(ratio), int(np.ceil(header.n_samples * float(ratio)))


def _memory_problem(need: int, memory: int, total: int) -> str:
    """What is needed against what there is; the workers are named when fewer would help."""
    shared = need <= total
    workers = f", {total // memory} recordings at once (executor.n_workers)" if shared else ""
    return f"about {_size(need)} of memory per recording{workers}; this machine has {_size(total)}."


def _fewer_workers(need: int, total: int) -> str:
    return " Or lower executor.n_workers." if need <= total else ""


def _check_memory(
    header: Header, rate: float, n_samples: int, resample_hz: float | None, memory: int, total: int
) -> None:
    """Filtering one recording at ``rate`` must fit in one worker's share of memory
    (``resample_hz`` given: the resampled recording, to blame on that parameter)."""
    need = FILTER_BYTES_PER_SAMPLE * header.n_channels * n_samples * header.n_epochs
    if need <= memory:
        return
    if resample_hz:
        name = "preprocessing.resample_hz"
        fix = "lower preprocessing.resample_hz (null keeps the native rate)."
    elif header.rate_parameter:
        name, fix = header.rate_parameter, f"check {header.rate_parameter} (a rate in Hz)."
    else:
        name, fix = header.source, "split the recording or keep fewer channels (dataset.channels)."
    raise InputDataError(
        name,
        f"{header.source} at {rate:g} Hz holds {n_samples * header.n_epochs:,} samples x "
        f"{header.n_channels} channels: " + _memory_problem(need, memory, total),
        fix + _fewer_workers(need, total),
    )


def _check_filters(header: Header, rate: float, preprocessing: dict, warnings, problems) -> None:
    nyquist = rate / 2
    for kind in dict.fromkeys(header.channel_types):
        spec = (preprocessing.get("filters") or {}).get(kind) or {}
        name = f"preprocessing.filters.{kind}"
        low, high = spec.get("l_freq"), spec.get("h_freq")
        if low and low >= nyquist:
            error = InputDataError(
                f"{name}.l_freq",
                f"{low:g} Hz is at or above the Nyquist frequency of {header.source} "
                f"({nyquist:g} Hz at {rate:g} Hz): the pass band holds no frequency of the data.",
                f"set {name}.l_freq below {nyquist:g} Hz (or null), or raise "
                "preprocessing.resample_hz.",
            )
            problems.setdefault(str(error), error)
        if high and high >= LOW_PASS_LIMIT * nyquist:
            _warn(
                warnings,
                header.source,
                f"{name}.h_freq={high:g} Hz is at or above the Nyquist frequency of {{source}} "
                f"({nyquist:g} Hz at {rate:g} Hz): no low-pass is applied to its {kind} channels.",
            )
    notch = preprocessing.get("notch_hz")
    if notch and notch >= nyquist:
        _warn(
            warnings,
            header.source,
            f"preprocessing.notch_hz={notch:g} Hz is at or above the Nyquist frequency of "
            f"{{source}} ({nyquist:g} Hz): no notch filter is applied.",
        )


def _check_window_fits_some(headers: list[Header], preprocessing: dict) -> None:
    """An epoch window longer than every recording is the parameter's fault, not a file's."""
    durations = [h.duration_s for h in headers if not h.epoched]
    window_s = float(preprocessing["epoch"]["window_s"])
    if durations and window_s > max(durations):
        raise InputDataError(
            "preprocessing.epoch.window_s",
            f"{window_s:g} s is longer than every recording (the longest is "
            f"{max(durations):.1f} s).",
            "set preprocessing.epoch.window_s in seconds (30 for sleep staging).",
        )


def _check_epochs(
    header: Header, rate: float, n_samples: int, epoch: dict, memory: int, total: int
) -> int:
    """Window and step against one recording; returns the bytes of its epochs."""
    window_s, step_s = float(epoch["window_s"]), float(epoch["step_s"])
    n_win, n_step = int(round(window_s * rate)), int(round(step_s * rate))
    if n_win < 2 or n_step < 1:
        raise InputDataError(
            "preprocessing.epoch",
            f"window {window_s:g} s / step {step_s:g} s is too short at {rate:g} Hz "
            f"({header.source}).",
            "set preprocessing.epoch.window_s to at least two samples and step_s to at least one.",
        )
    if n_samples < n_win:
        raise InputDataError(
            header.source,
            f"recording is {n_samples / rate:.1f} s long, shorter than one {window_s:g} s epoch.",
            "lower preprocessing.epoch.window_s or drop this file.",
        )
    n_epochs = (n_samples - n_win) // n_step + 1
    epoch_bytes = FLOAT32_BYTES * header.n_channels * n_win * n_epochs
    need = int(EPOCH_COPIES * epoch_bytes) + FLOAT32_BYTES * header.n_channels * n_samples
    if need > memory:
        raise InputDataError(
            "preprocessing.epoch.step_s",
            f"{n_epochs:,} epochs of {window_s:g} s every {step_s:g} s from {header.source} "
            "need " + _memory_problem(need, memory, total),
            "raise preprocessing.epoch.step_s (equal to window_s: epochs do not overlap) or "
            "shorten window_s." + _fewer_workers(need, total),
        )
    return epoch_bytes


def _check_disk(need: int, epoch: dict, staging_dir: str | Path, free: int | None) -> None:
    if free is None:
        folder = Path(staging_dir).resolve()
        free = shutil.disk_usage(next(p for p in [folder, *folder.parents] if p.exists())).free
    if need <= free:
        return
    overlap = float(epoch["window_s"]) / float(epoch["step_s"])
    raise InputDataError(
        "preprocessing.epoch.step_s" if overlap > 1 else "dataset",
        f"the epochs would take {_size(need)} on disk"
        + (f" (each sample in {overlap:.0f} overlapping epochs)" if overlap > 1 else "")
        + f"; {_size(free)} are free under {staging_dir}.",
        "raise step_s towards window_s, or free disk space." if overlap > 1 else "free disk space.",
    )
