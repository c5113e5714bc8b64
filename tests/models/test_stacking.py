"""Stacking nodes and library on tiny tables: meta-learner, deep joins, manifest, fitted stack."""

import numpy as np
import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.models.manifest import check_against_manifest, folds_hash
from epochstack.models.registry import make_estimator, select_features
from epochstack.models.stacking import meta_features
from epochstack.pipelines.stacking import nodes

CLASSES = ["NREM", "REM", "Wake"]
STACKING = {"seed": 0, "use_deep_models": "auto", "imbalance": {}, "meta_learner": {"estimator": "logreg", "params": {"C": 1.0}}}
BASE_MODELS = {
    "logreg": {"estimator": "logreg", "params": {"C": 0.1}, "features": {"families": ["spectral"]}},
    "extra_trees": {"estimator": "extra_trees", "params": {"n_estimators": 30}, "features": {"exclude": ["spectral"]}},
}


def tiny_stacking_data(n_subjects=8, epochs_per_subject=60, seed=0):
    """features / epoch_table / folds in the project's contracts: 3 CV folds, 2 test subjects."""
    rng = np.random.default_rng(seed)
    rows, feats = [], []
    for s in range(n_subjects):
        labels = rng.choice(CLASSES, size=epochs_per_subject, p=[0.5, 0.15, 0.35])
        for i, label in enumerate(labels):
            epoch_id = f"rec{s}_{i:06d}"
            rows.append({"epoch_id": epoch_id, "recording_id": f"rec{s}", "subject_id": f"s{s}", "epoch_index": i, "t_start_s": 30.0 * i, "label": label})
            shift = {c: 1.5 * (label == c) for c in CLASSES}
            feats.append({
                "epoch_id": epoch_id,
                "eeg_spectral_logpow_delta": shift["NREM"] + rng.normal(),
                "eeg_spectral_logpow_theta": shift["REM"] + rng.normal(),
                "emg_time_logrms": shift["Wake"] + rng.normal(),
                "eog_time_logrms": shift["REM"] + rng.normal(),
                "noise_time_x": rng.normal(),
            })
    epoch_table = pd.DataFrame(rows).astype({"label": "string", "epoch_id": "string"})
    fold_of_subject = {f"s{s}": (s // 2 if s < n_subjects - 2 else -1) for s in range(n_subjects)}
    folds = pd.DataFrame({"epoch_id": epoch_table.epoch_id, "fold": epoch_table.subject_id.map(fold_of_subject).astype(int)})
    return pd.DataFrame(feats), epoch_table, folds


def train_tiny_stack(features, epoch_table, folds, deep=None, stacking=STACKING):
    """Run the stacking nodes in order (what the pipeline wires) without Kedro."""
    tabular, fitted, reports = [], [], []
    for name, spec in BASE_MODELS.items():
        oof, report = nodes.cross_validate_base_model(features, epoch_table, folds, spec, {}, stacking, 1, model_name=name)
        model, test = nodes.refit_base_model(features, epoch_table, folds, spec, {}, stacking, 1, model_name=name)
        tabular += [oof, test]
        fitted.append(model)
        reports.append(report)
    deep = pd.DataFrame() if deep is None else deep
    base = nodes.combine_base_predictions(folds, epoch_table, deep, stacking, *tabular)
    stack_oof, meta_report = nodes.cross_validate_meta_learner(base, epoch_table, {}, stacking)
    meta, test_predictions = nodes.refit_meta_learner(base, epoch_table, {}, stacking)
    model = nodes.assemble_stacking_model(meta, base, epoch_table, *fitted)
    return {"base": base, "stack_oof": stack_oof, "test": test_predictions, "model": model, "reports": [*reports, meta_report]}


@pytest.fixture(scope="module")
def tiny():
    return tiny_stacking_data()


@pytest.fixture(scope="module")
def trained(tiny):
    return train_tiny_stack(*tiny)


def test_outputs_follow_the_contracts(tiny, trained):
    _, epoch_table, folds = tiny
    cv_ids, test_ids = set(folds.epoch_id[folds.fold >= 0]), set(folds.epoch_id[folds.fold == -1])
    stack_oof, test = trained["stack_oof"], trained["test"]
    assert list(stack_oof.columns) == ["epoch_id", "fold", "model", "proba_NREM", "proba_REM", "proba_Wake", "pred"]
    assert set(stack_oof.epoch_id) == cv_ids and stack_oof.epoch_id.is_unique and (stack_oof.model == "stack").all()
    assert (stack_oof.set_index("epoch_id").fold == folds.set_index("epoch_id").fold.loc[stack_oof.epoch_id]).all()
    assert list(test.columns) == ["epoch_id", "pred", "proba_NREM", "proba_REM", "proba_Wake"]
    assert set(test.epoch_id) == test_ids
    np.testing.assert_allclose(test.filter(like="proba_").sum(axis=1), 1.0)
    predictions = nodes.collect_model_predictions(trained["base"], stack_oof, test)
    assert set(predictions.model) == {"logreg", "extra_trees", "stack"}
    assert predictions.groupby(["model", "split"]).size().to_dict() == {
        (m, s): len(ids) for m in ("extra_trees", "logreg", "stack") for s, ids in (("oof", cv_ids), ("test", test_ids))
    }
    table, metrics = nodes.score_models(predictions, epoch_table, *trained["reports"])
    assert table["oof_scores"]["stack"]["macro_f1"] > 0.6
    assert len(metrics["logreg.fold_fit_seconds"]) == 3


def test_fitted_stack_reproduces_test_predictions(tiny, trained):
    features, _, folds = tiny
    test_ids = trained["test"].epoch_id
    proba = trained["model"].predict_proba(features.set_index("epoch_id").loc[test_ids])
    np.testing.assert_array_equal(proba, trained["test"].filter(like="proba_").to_numpy())


def test_feature_subsets_per_model(trained):
    by_name = {m.name: m.feature_columns for m in trained["model"].base_models}
    assert by_name["logreg"] == ["eeg_spectral_logpow_delta", "eeg_spectral_logpow_theta"]
    assert "eeg_spectral_logpow_delta" not in by_name["extra_trees"] and "noise_time_x" in by_name["extra_trees"]
    with pytest.raises(InputDataError, match="selects no column"):
        select_features(["epoch_id", "a_b"], {"include": ["zzz"]})
    with pytest.raises(InputDataError, match="unknown estimator"):
        make_estimator("sklearn.svm.SVC")


def deep_rows(base, model="cnn"):
    """Deep-model rows built from a tabular model's rows (same epochs, same folds)."""
    rows = base[base.model == "logreg"].copy()
    rows["model"] = model
    return rows


def test_deep_models_join_the_stack(tiny, trained):
    features, epoch_table, folds = tiny
    deep = deep_rows(trained["base"])
    stacked = train_tiny_stack(features, epoch_table, folds, deep=deep)
    assert stacked["model"].base_model_order == ["logreg", "extra_trees", "cnn"]
    assert set(stacked["base"].model) == {"logreg", "extra_trees", "cnn"}
    # inference needs the deep model's probabilities by name
    with pytest.raises(InputDataError, match="deep base models"):
        stacked["model"].predict_proba(features.set_index("epoch_id"))


def test_deep_predictions_on_other_folds_are_refused(tiny, trained):
    _, epoch_table, folds = tiny
    deep = deep_rows(trained["base"])
    moved = deep.copy()
    moved.loc[moved.split == "oof", "fold"] = (moved.loc[moved.split == "oof", "fold"] + 1) % 3
    with pytest.raises(InputDataError, match="use_deep_models: false"):
        nodes.deep_base_predictions(moved, folds, CLASSES, "auto")
    with pytest.raises(InputDataError, match="do not cover"):
        nodes.deep_base_predictions(deep.iloc[5:], folds, CLASSES, True)
    assert nodes.deep_base_predictions(moved, folds, CLASSES, False).empty
    with pytest.raises(InputDataError, match="is empty"):
        nodes.deep_base_predictions(pd.DataFrame(), folds, CLASSES, True)


def test_manifest_refuses_mismatched_inputs(tiny, trained):
    features, _, folds = tiny
    model = trained["model"]
    manifest = nodes.build_stacking_manifest(model, folds, STACKING, {})
    assert manifest["base_model_order"] == ["logreg", "extra_trees"] and manifest["classes"] == CLASSES
    assert manifest["folds_hash"] == folds_hash(folds.sample(frac=1, random_state=0))
    check_against_manifest(manifest, features.columns, model.classes, model.base_model_order)
    with pytest.raises(InputDataError, match="feature columns .* missing"):
        check_against_manifest(manifest, features.columns.drop("noise_time_x"), model.classes, model.base_model_order)
    with pytest.raises(InputDataError, match="classes"):
        check_against_manifest(manifest, features.columns, ["NREM", "Wake"], model.base_model_order)
    changed = folds.assign(fold=folds.fold.where(folds.fold < 0, (folds.fold + 1) % 3))
    assert folds_hash(changed) != manifest["folds_hash"]


def test_meta_features_are_the_probabilities_in_base_model_order():
    p = np.array([[1.0, 0.0], [0.25, 0.75]])
    z = meta_features([p, p[:, ::-1]])
    assert z.shape == (2, 4) and np.isfinite(z).all()
    np.testing.assert_array_equal(z, [[1.0, 0.0, 0.0, 1.0], [0.25, 0.75, 0.75, 0.25]])
