"""Write the sample night a new user can send to `kedro serve` (docs/inference.md):
data/01_raw/samples/night.edf and data/01_raw/samples/night.mat.

Both hold the same hour of a held-out test subject of the default synthetic data (conf/base:
seed 42, 10 subjects of 8 h; the default split holds out sub-000 and sub-007), with the default
model's channels (EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal, EMG submental) at 100 Hz and the
scorer's hypnogram (EDF+ annotations; the `labels` variable of the .mat). EDF stores 16-bit
integers, so the EDF is written first and the .mat holds exactly the values the EDF decodes to:
the two files give identical labels and probabilities.

    .venv/bin/python scripts/make_samples.py            # rewrites both files
"""

from __future__ import annotations

import argparse
from pathlib import Path

from epochstack.io.edf import load_edf_recording
from epochstack.io.edf_writer import write_edf
from epochstack.io.mat import write_mat
from epochstack.models.splits import choose_test_subjects
from epochstack.signals.recording import Recording
from epochstack.synthetic import generate_sleep_recording

ROOT = Path(__file__).resolve().parents[1]
SEED, N_SUBJECTS, HOURS, SFREQ = 42, 10, 8.0, 100.0  # conf/base dataset.synthetic
SPLIT_SEED, N_TEST_SUBJECTS = 42, 2  # conf/base splits
EPOCH_S = 30.0


def sample_night(first_epoch: int, n_epochs: int) -> Recording:
    """``n_epochs`` 30-s epochs of the last held-out test subject's night, from ``first_epoch``."""
    subjects = [f"sub-{i:03d}" for i in range(N_SUBJECTS)]
    test = choose_test_subjects(subjects, None, N_TEST_SUBJECTS, SPLIT_SEED)[-1]
    night = generate_sleep_recording(subjects.index(test), hours=HOURS, sfreq=SFREQ, seed=SEED)
    per_epoch = int(EPOCH_S * SFREQ)
    start, stop = first_epoch * per_epoch, (first_epoch + n_epochs) * per_epoch
    night.signals = night.signals[:, start:stop]
    night.epoch_labels = night.epoch_labels[first_epoch : first_epoch + n_epochs]
    return night


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data/01_raw/samples")
    parser.add_argument("--first-epoch", type=int, default=330, help="2 h 45 min into the night")
    parser.add_argument("--epochs", type=int, default=120, help="one hour")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    edf = write_edf(sample_night(args.first_epoch, args.epochs), args.out / "night.edf")
    decoded = load_edf_recording(edf, recording_id="night", subject_id="night")
    mat = write_mat(decoded, args.out / "night.mat")
    for path in (edf, mat):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.1f} MB")  # noqa: T201


if __name__ == "__main__":
    main()
