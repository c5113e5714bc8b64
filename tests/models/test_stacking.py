"""The stack: never worse than its best base model, chosen without looking at the fold it predicts."""

import numpy as np
import pandas as pd
import pytest

from epochstack.models.engine import EpochData, out_of_fold, scores
from epochstack.models.stacking import SelectedStack, WeightedAverage, meta_table
from tests.models.conftest import CLASSES

RNG = np.random.default_rng(0)


def stack_data(n=600, n_folds=4, quality=None, seed=0):
    """Base-model probabilities of known quality: ``quality[m]`` is the chance model m is right."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(CLASSES), size=n)
    quality = quality or {"good": 0.85, "fair": 0.7, "noise": 0.34}
    probas = {}
    for model, q in quality.items():
        right = rng.random(n) < q
        guess = np.where(right, y, rng.integers(0, len(CLASSES), n))
        p = rng.dirichlet(np.ones(len(CLASSES)) * 2, size=n) * 0.5
        p[np.arange(n), guess] += 0.5
        probas[model] = p / p.sum(axis=1, keepdims=True)
    ids = [f"e{i:05d}" for i in range(n)]
    table = pd.DataFrame(
        {
            "epoch_id": ids,
            "recording_id": ids,
            "subject_id": [f"s{i % 12}" for i in range(n)],
            "signal_row": 0,
            "label": np.asarray(CLASSES)[y],
            "fold": np.arange(n) % n_folds,
        }
    )
    return (
        EpochData(table, CLASSES, features=meta_table(probas, ids, CLASSES)),
        np.arange(n),
        list(quality),
    )


def test_falls_back_to_the_best_base_model_when_combining_does_not_help():
    data, rows, models = stack_data(quality={"good": 0.9, "noise": 0.34, "noise2": 0.34})
    stack = SelectedStack(models, CLASSES).fit(data, rows)
    assert stack.selected_ == "good" and stack.models == ["good"]
    np.testing.assert_allclose(
        stack.predict_proba(data, rows),
        data.feature_matrix(rows, [f"good|proba_{c}" for c in CLASSES]),
    )


def test_combines_when_it_beats_every_base_model_in_every_fold():
    data, rows, models = stack_data(
        quality={"a": 0.7, "b": 0.7, "c": 0.7}
    )  # independent errors: averaging helps
    stack = SelectedStack(models, CLASSES).fit(data, rows)
    assert stack.selected_ not in models
    best_single = max(stack.scores_[m]["macro_f1"] for m in models)
    assert stack.scores_[stack.selected_]["macro_f1"] >= best_single + 0.005


def test_the_stack_oof_is_chosen_without_its_fold():
    """Inside the engine the choice is made again per outer fold, on the other folds only."""
    data, rows, models = stack_data()
    result = out_of_fold(lambda: SelectedStack(models, CLASSES), data, rows)
    assert len(result.folds) == 4 and all("selected" in r.model_report for r in result.folds)
    for record in result.folds:
        assert not set(record.fit_epoch_ids) & set(record.predicted_epoch_ids)
    stack_f1 = scores(data.labels(rows), result.predictions())["macro_f1"]
    good_f1 = scores(
        data.labels(rows),
        np.asarray(CLASSES)[
            data.feature_matrix(rows, [f"good|proba_{c}" for c in CLASSES]).argmax(1)
        ],
    )["macro_f1"]
    assert stack_f1 >= good_f1 - 0.02


def test_weighted_average_weights_are_a_simplex_favouring_the_better_model():
    data, rows, _ = stack_data(quality={"good": 0.9, "fair": 0.6})
    model = WeightedAverage(["good", "fair"], CLASSES).fit(data, rows)
    weights = model.weights_
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5) and min(weights.values()) >= 0
    assert weights["good"] > weights["fair"]
    np.testing.assert_allclose(model.predict_proba(data, rows).sum(axis=1), 1.0)


def test_ties_in_decisions_go_to_the_better_probabilities():
    """Two base models that decide alike (same argmax everywhere): the sharper one is the stack,
    whatever their order (on small, easy data every model is often right)."""
    data, rows, _ = stack_data(quality={"sharp": 0.9})
    sharp = data.feature_matrix(rows, [f"sharp|proba_{c}" for c in CLASSES])
    soft = 0.5 * sharp + 0.5 / len(CLASSES)  # same decisions, less confident
    ids = data.epoch_ids(rows)
    tied = EpochData(
        data.table, CLASSES, features=meta_table({"soft": soft, "sharp": sharp}, ids, CLASSES)
    )
    stack = SelectedStack(["soft", "sharp"], CLASSES, {"combiners": []}).fit(tied, rows)
    assert stack.scores_["soft"]["macro_f1"] == stack.scores_["sharp"]["macro_f1"]
    assert stack.scores_["soft"]["log_loss"] > stack.scores_["sharp"]["log_loss"]
    assert stack.selected_ == "sharp"
