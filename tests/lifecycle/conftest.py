"""One tiny project trained end to end (every training pipeline, the deep network included),
shared by the serving and notebook tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import FAST_STACKING, TINY_SLEEP, KedroProject, deep_merge

# A few trees, two Optuna trials, the fast deep preset: minutes of CPU, not hours.
FAST_TRAINING = deep_merge(
    deep_merge(TINY_SLEEP, FAST_STACKING),
    {"deep_models": {"preset": "fast", "torch_threads": 1}},
)


@pytest.fixture(scope="package")
def trained(tmp_path_factory) -> tuple[KedroProject, dict]:
    """A project after the default `kedro run` (all training pipelines) on tiny synthetic sleep."""
    project = KedroProject(tmp_path_factory.mktemp("lifecycle") / "project")
    project.run("__default__", FAST_TRAINING)
    return project, FAST_TRAINING


def new_recording_samples(
    subject: int = 37, hours: float = 0.25, seed: int = 9091
) -> tuple[pd.DataFrame, list[str]]:
    """A recording no model saw, as the serving input table (the CSV format), and its labels."""
    from epochstack.synthetic import generate_sleep_recording

    rec = generate_sleep_recording(subject, hours=hours, sfreq=100.0, seed=seed)
    samples = pd.DataFrame(rec.signals.T.astype(float), columns=list(rec.channel_names))
    samples.insert(0, "time", np.arange(rec.n_samples) / rec.sfreq)
    samples["recording_id"], samples["subject_id"] = "new-night", "new-subject"
    return samples, [str(x) for x in rec.epoch_labels]
