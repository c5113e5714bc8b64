"""The stack: chosen by cross-validation without looking at the fold it predicts (two rules)."""

import numpy as np
import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.models.engine import EpochData, out_of_fold, scores
from epochstack.models.stacking import CAWPE, SelectedStack, WeightedAverage, meta_table
from tests.models.conftest import CLASSES

RNG = np.random.default_rng(0)


def stack_data(n=600, n_folds=4, quality=None, seed=0):
    """Base-model probabilities of known quality: ``quality[m]`` is the chance model m is right
    (one value, or one per fold)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(CLASSES), size=n)
    quality = quality or {"good": 0.85, "fair": 0.7, "noise": 0.34}
    fold = np.arange(n) % n_folds
    probas = {}
    for model, q in quality.items():
        right = rng.random(n) < np.broadcast_to(np.asarray(q, dtype=float), (n_folds,))[fold]
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
            "fold": fold,
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


ROBUST = {"combiners": [], "noise_z": 2.0}


def test_cawpe_weights_are_cv_accuracy_to_the_fourth_power():
    data, rows, models = stack_data(quality={"good": 0.9, "fair": 0.6, "noise": 0.34})
    model = CAWPE(models, CLASSES).fit(data, rows)
    accuracy = {
        m: (
            np.asarray(CLASSES)[
                data.feature_matrix(rows, [f"{m}|proba_{c}" for c in CLASSES]).argmax(1)
            ]
            == data.labels(rows)
        ).mean()
        for m in models
    }
    raw = {m: a**4 for m, a in accuracy.items()}
    for m in models:
        assert model.weights_[m] == pytest.approx(raw[m] / sum(raw.values()), abs=1e-5)
    proba = model.predict_proba(data, rows)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    expected = sum(
        model.weights_[m] * data.feature_matrix(rows, [f"{m}|proba_{c}" for c in CLASSES])
        for m in models
    )
    np.testing.assert_allclose(proba, expected / sum(model.weights_.values()), atol=1e-5)


def test_within_noise_the_stack_takes_the_candidate_with_the_lowest_log_loss():
    """An overconfident model leads the pooled CV score by a few cases but puts near-zero
    probability on the truth when wrong; a calibrated one is within noise of it. The old rule
    bets on the pooled lead, the robust rule takes the calibrated model."""
    data, rows, _ = stack_data(quality={"overconfident": 0.86, "calibrated": 0.82}, seed=1)
    ids = data.epoch_ids(rows)
    columns = {m: [f"{m}|proba_{c}" for c in CLASSES] for m in ("overconfident", "calibrated")}
    sharp = data.feature_matrix(rows, columns["overconfident"]) ** 8
    probas = {
        "overconfident": sharp / sharp.sum(axis=1, keepdims=True),
        "calibrated": data.feature_matrix(rows, columns["calibrated"]),
    }
    sharpened = EpochData(data.table, CLASSES, features=meta_table(probas, ids, CLASSES))
    robust = SelectedStack(list(probas), CLASSES, ROBUST).fit(sharpened, rows)
    old = SelectedStack(list(probas), CLASSES, {"combiners": []}).fit(sharpened, rows)
    scores = robust.scores_
    assert scores["overconfident"]["macro_f1"] > scores["calibrated"]["macro_f1"]
    assert scores["overconfident"]["log_loss"] > scores["calibrated"]["log_loss"]
    assert old.selected_ == "overconfident" and robust.selected_ == "calibrated"


def test_a_candidate_better_beyond_noise_is_chosen_whatever_its_log_loss():
    data, rows, _ = stack_data(quality={"good": [1.0, 1.0, 1.0, 0.7], "fair": 0.78})
    ids = data.epoch_ids(rows)
    sharp = data.feature_matrix(rows, [f"good|proba_{c}" for c in CLASSES]) ** 30
    probas = {
        "good": sharp / sharp.sum(axis=1, keepdims=True),
        "fair": data.feature_matrix(rows, [f"fair|proba_{c}" for c in CLASSES]),
    }
    sharpened = EpochData(data.table, CLASSES, features=meta_table(probas, ids, CLASSES))
    stack = SelectedStack(list(probas), CLASSES, ROBUST).fit(sharpened, rows)
    assert stack.scores_["good"]["log_loss"] > stack.scores_["fair"]["log_loss"]
    assert stack.selected_ == "good"


def test_a_base_model_better_than_cawpe_beyond_noise_is_chosen_alone():
    """Four copies of one fair model (a family of near-identical transforms) outvote the good
    one inside CAWPE; the good model alone is better beyond noise and is chosen."""
    data, rows, _ = stack_data(quality={"good": 0.95, "fair": 0.75})
    ids = data.epoch_ids(rows)
    fair = data.feature_matrix(rows, [f"fair|proba_{c}" for c in CLASSES])
    good = data.feature_matrix(rows, [f"good|proba_{c}" for c in CLASSES])
    probas = {"good": good, **{f"fair{i}": fair for i in range(4)}}
    family = EpochData(data.table, CLASSES, features=meta_table(probas, ids, CLASSES))
    settings = {"combiners": ["cawpe"], "noise_z": 2.0}
    stack = SelectedStack(list(probas), CLASSES, settings).fit(family, rows)
    assert stack.scores_["cawpe"]["macro_f1"] < stack.scores_["good"]["macro_f1"] - 0.05
    assert stack.selected_ == "good"


def test_unknown_combiners_are_refused():
    data, rows, models = stack_data()
    with pytest.raises(InputDataError, match="stacking.stack.combiners"):
        SelectedStack(models, CLASSES, {"combiners": ["cawpe", "vote"]}).fit(data, rows)


def test_when_every_candidate_is_right_everywhere_the_stack_does_not_bet_on_one_model():
    """Issue 19's set A: every base model right on (nearly) every CV case; the old rule breaks
    the tie by log loss (the sharpest single model), the robust rule takes CAWPE."""
    data, rows, models = stack_data(quality={"a": 1.0, "b": 1.0, "c": 1.0})
    robust = SelectedStack(models, CLASSES, {"combiners": ["cawpe"], "noise_z": 2.0})
    old = SelectedStack(models, CLASSES, {"combiners": ["cawpe"]})
    assert robust.fit(data, rows).selected_ == "cawpe"
    assert old.fit(data, rows).selected_ in models
