"""Nested selection: tuning inside an outer fold never sees it; the selection bias is measured."""

import numpy as np
import optuna

from epochstack.models.engine import EpochModel, out_of_fold, scores
from epochstack.models.fitting import fit_base_model
from epochstack.models.tuning import TunedModel, data_fingerprint
from tests.models.conftest import CLASSES, informative_data, permuted_labels

COLUMNS = [f"f{j}" for j in range(6)]
SEARCH = {
    "n_trials": 3,
    "n_startup_trials": 3,
    "space": {"shift": {"type": "float", "low": 0.0, "high": 1.0}},
}
EVENTS: list = []


class Spy(EpochModel):
    """Records the subjects of every fit and predict call (a tunable no-op model)."""

    def __init__(self, params):
        self.classes, self.shift = CLASSES, params.get("shift", 0.0)

    def fit(self, data, rows):
        EVENTS.append(("fit", set(data.table.subject_id.iloc[rows])))
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    def predict_proba(self, data, rows):
        EVENTS.append(("predict", set(data.table.subject_id.iloc[rows])))
        return np.tile([0.5 + self.shift / 10, 0.2, 0.3 - self.shift / 10], (len(rows), 1))


def test_nested_tuning_never_sees_the_outer_fold(tmp_path):
    data, cv, _ = informative_data()
    subjects_of = {f: set(data.table.subject_id[data.table.fold == f]) for f in range(4)}
    storage = f"sqlite:///{tmp_path}/optuna.db"
    marks = []

    def make():
        return TunedModel("spy", Spy, SEARCH, storage, 0, {"test": "nested"}, data_fingerprint)

    out_of_fold(
        make, data, cv, on_fold=lambda step, record: marks.append((record.fold, len(EVENTS)))
    )
    start = 0
    for fold, end in marks:
        events = EVENTS[start:end]
        outer_predict, inner = events[-1], events[:-1]
        assert outer_predict == ("predict", subjects_of[fold]), (
            "the outer fold is predicted once, at the end"
        )
        assert len(inner) > 10, "the trials of the inner search ran"
        touched = set().union(*(subjects for _, subjects in inner))
        assert not touched & subjects_of[fold], f"tuning for outer fold {fold} touched its subjects"
        start = end


class Guess(EpochModel):
    """Guesses: probabilities drawn from its hyper-parameter ``seed``, one row per epoch.

    On permuted labels every setting scores chance on average, so what tuning reports for the
    setting it picked is pure selection bias: the most lucky of the trials.
    """

    def __init__(self, params):
        self.classes, self.seed = CLASSES, int(params.get("seed", 0))

    def fit(self, data, rows):
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    def predict_proba(self, data, rows):
        guesses = np.random.default_rng(self.seed).dirichlet(
            np.ones(len(CLASSES)), size=len(data.table)
        )
        return guesses[rows]


def test_the_selection_bias_is_measured_on_permuted_labels(tmp_path):
    """Nothing to learn: the nested OOF score stays at chance, the non-nested tuned score does not."""
    data, cv, test = informative_data(n_subjects=10, per_subject=40, n_test_subjects=2)
    shuffled = permuted_labels(data, seed=3)
    search = {
        "n_trials": 12,
        "n_startup_trials": 12,
        "space": {"seed": {"type": "int", "low": 0, "high": 10**6}},
    }
    y = shuffled.labels(cv)
    nested = fit_base_model(
        "guess",
        Guess,
        shuffled,
        cv,
        test,
        search=search,
        protocol="nested",
        storage=f"sqlite:///{tmp_path}/n.db",
    )
    non_nested = fit_base_model(
        "guess",
        Guess,
        shuffled,
        cv,
        test,
        search=search,
        protocol="non_nested",
        storage=f"sqlite:///{tmp_path}/nn.db",
    )
    nested_score = scores(y, nested.oof.predictions())["kappa"]
    non_nested_score = scores(y, non_nested.oof.predictions())["kappa"]
    tuned = optuna.load_study(
        study_name=non_nested.studies[0], storage=f"sqlite:///{tmp_path}/nn.db"
    ).best_value
    assert abs(nested_score) < 0.06, "nested OOF: chance"
    assert non_nested_score > nested_score + 0.03 and tuned > 1 / 3, (
        "non-nested OOF: the lucky trial's score"
    )
    assert len(nested.studies) == 5, "one study per outer fold, and one for the final model"


def test_auto_protocol_is_nested_while_affordable():
    from epochstack.models.fitting import resolve_protocol

    search = {"space": {"C": {"type": "float", "low": 0.1, "high": 1.0}}}
    stacking = {
        "enabled": ["logreg"],
        "base_models": {"logreg": {"search": {**search, "n_trials": 6}}, "hgb": {}},
    }
    deep = {
        "enabled": ["cnn"],
        "networks": {"cnn": {"search": {"lr": {}}}},
        "optuna": {"n_trials": 0},
    }
    assert resolve_protocol("auto", deep, stacking) == "nested"
    assert resolve_protocol("non_nested", deep, stacking) == "non_nested"
    stacking["base_models"]["logreg"]["search"]["n_trials"] = 60
    assert resolve_protocol("auto", deep, stacking) == "non_nested"
    assert resolve_protocol("auto", deep) == "nested", (
        "deep_models alone: only its own searches count"
    )
    stacking["base_models"]["logreg"]["search"]["n_trials"] = 6
    assert resolve_protocol("auto", {**deep, "optuna": {"n_trials": 4}}, stacking) == "non_nested"
