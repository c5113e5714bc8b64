"""Embedded synthetic recordings: a full run of the platform with no data to download.

Two tasks, each a deterministic function of ``(seed, subject_index)``:

- ``sleep``: one night of polysomnography per subject (EEG Fpz-Cz, EEG Pz-Oz, horizontal EOG,
  submental EMG, in µV) with a 30-s AASM hypnogram (:mod:`.sleep` with the ``easy`` generator,
  :mod:`.sleep_realistic`; shared pieces in :mod:`.stages`, :mod:`.hypnogram`,
  :mod:`.transients`), also written as a Sleep-EDF-style folder of EDF files
  (:func:`write_sleep_edf_folder`, :mod:`.sleep_edf`);
- ``seizure``: hours of wrist accelerometry (g) and heart rate (bpm) per subject with
  tonic-clonic seizure events and unlabelled rhythmic mimics (:mod:`.seizure`).

Both build on :mod:`.noise`. See docs/synthetic_data.md for the physiology and the calibration.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from epochstack.errors import ParameterError
from epochstack.signals.recording import Header, LazyRecording, Recording
from epochstack.synthetic.seizure import SEIZURE_CHANNEL_TYPES, generate_seizure_recording
from epochstack.synthetic.sleep import generate_sleep_recording, simulate_sleep_night
from epochstack.synthetic.sleep_edf import write_sleep_edf_folder
from epochstack.synthetic.stages import EPOCH_S as SLEEP_EPOCH_S
from epochstack.synthetic.stages import SLEEP_CHANNEL_TYPES, SleepNight

__all__ = [
    "TASKS",
    "SleepNight",
    "generate_seizure_recording",
    "generate_sleep_recording",
    "simulate_sleep_night",
    "synthetic_recordings",
    "write_sleep_edf_folder",
]

# task -> (generator, default sampling rate in Hz, recording-id suffix)
TASKS: dict[str, tuple[Callable[..., Recording], float, str]] = {
    "sleep": (generate_sleep_recording, 100.0, "night-1"),
    "seizure": (generate_seizure_recording, 25.0, "day-1"),
}
_CHANNEL_TYPES = {"sleep": tuple(SLEEP_CHANNEL_TYPES), "seizure": tuple(SEIZURE_CHANNEL_TYPES)}


def _duration_s(task: str, hours: float) -> float:
    """The generated length: whole 30-s epochs (sleep) or whole seconds (seizure)."""
    if task == "sleep":
        return round(hours * 3600 / SLEEP_EPOCH_S) * SLEEP_EPOCH_S
    return float(round(hours * 3600))


def synthetic_recordings(
    task: str,
    n_subjects: int,
    hours_per_subject: float,
    sfreq: float | None,
    seed: int,
    *,
    difficulty: str = "realistic",
    population: str | None = None,
) -> dict[str, Callable[[], Recording]]:
    """Lazy recordings: ``recording_id -> zero-arg callable`` generating that subject's data.

    The callables are :class:`LazyRecording` objects of module-level functions (with the
    header of what they generate), so they pickle (joblib can run them in parallel) and nothing
    is generated until called. Subject ``i``
    (``sub-00i``, from 0) is the same whatever ``n_subjects`` is. ``sfreq=None`` takes the
    task's default rate (sleep 100 Hz, seizure 25 Hz). ``difficulty`` and ``population`` shape
    the sleep task (see :func:`generate_sleep_recording`); the seizure task has one of each.
    """
    if task not in TASKS:
        raise ParameterError(
            "dataset.synthetic.task", f"unknown task {task!r}.", f"use one of {sorted(TASKS)}."
        )
    if int(n_subjects) < 1:
        raise ParameterError(
            "dataset.synthetic.n_subjects", f"must be at least 1, got {n_subjects}."
        )
    if not hours_per_subject or hours_per_subject <= 0:
        raise ParameterError(
            "dataset.synthetic.hours_per_subject", f"must be positive, got {hours_per_subject}."
        )
    generate, default_sfreq, suffix = TASKS[task]
    rate = float(sfreq) if sfreq else default_sfreq
    options = {}
    if task == "sleep":
        options = {"difficulty": str(difficulty), "population": population}
    elif population is not None:
        raise ParameterError(
            "dataset.synthetic.population",
            f"{population!r} applies to the sleep task only.",
            "set it to null.",
        )
    header = Header(
        "synthetic",
        rate,
        len(_CHANNEL_TYPES[task]),
        int(round(_duration_s(task, float(hours_per_subject)) * rate)),
        _CHANNEL_TYPES[task],
        rate_parameter="dataset.synthetic.sfreq" if sfreq else None,
    )
    return {
        f"sub-{i:03d}_{suffix}": LazyRecording(
            partial(
                generate, i, hours=float(hours_per_subject), sfreq=rate, seed=int(seed), **options
            ),
            header,
        )
        for i in range(int(n_subjects))
    }
