"""How the stack's choice fares on TEST files: every candidate and every rule, on real trial sets.

For each task (a ``<Name>_TRAIN.ts`` / ``<Name>_TEST.ts`` pair; with ``--swap`` also the same pair
with TRAIN and TEST exchanged, a second task from the same recordings), a real
``kedro run --env uea`` in a temporary copy of the project. From that run's base-model
probabilities, every stack candidate (each base model, CAWPE, the weighted average, the logistic
combiners) is scored by CV on the training cases exactly as the stack scores it, and on TEST.
Then each rule chooses from the CV scores alone:

- ``platform``: conf/uea's rule (``noise_z``: among the candidates CV cannot separate from the
  best, a combination first, the lowest log loss; docs/stacking.md);
- ``worst_fold``: among the same candidates, the best worst CV fold, an ensemble first on a tie
  (the platform's rule until 2026-12-07);
- ``pooled``: the best pooled CV score (macro F1, kappa, log loss), no noise rule;
- ``base_rule``: conf/base's rule (the best base model unless a combination beats it by the
  margin in every fold);
- ``cawpe``: always CAWPE.

Printed per task: every candidate's CV macro F1, CV log loss and TEST accuracy, and each rule's
TEST accuracy minus the best base model's on TEST (an oracle no rule can know; a rule at 0 chose
as well as hindsight). Then the mean per rule over the tasks.

    python benchmarks/stack_rules.py                  # the shipped samples and aeon's bundled sets
    python benchmarks/stack_rules.py --swap A_TRAIN.ts ...

The last line is ``stack_minus_best_base=<mean over the tasks, platform rule>``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from uea import SAMPLES, dataset_pairs, platform_run, uea_stacking

from epochstack.models.fitting import model_data
from epochstack.models.stack_training import stack_input
from epochstack.models.stacking import Candidate, choose, scored_candidates

# Classification sets that ship inside aeon's own install (real recordings; the equal-length
# copies where aeon has one).
AEON_SETS = (
    "BasicMotions/BasicMotions",
    "JapaneseVowels/JapaneseVowels_eq",
    "PickupGestureWiimoteZ/PickupGestureWiimoteZ_eq",
    "ACSF1/ACSF1",
    "ArrowHead/ArrowHead",
    "GunPoint/GunPoint",
    "ItalyPowerDemand/ItalyPowerDemand",
    "OSULeaf/OSULeaf",
)


def default_train_files() -> list[str]:
    """The shipped samples (BasicMotions there is also aeon's) and aeon's bundled sets."""
    import aeon.datasets

    aeon_data = Path(aeon.datasets.__file__).parent / "data"
    shipped = [p for p in sorted(SAMPLES.glob("*_TRAIN.ts")) if "BasicMotions" not in p.name]
    return [str(p) for p in shipped] + [str(aeon_data / f"{s}_TRAIN.ts") for s in AEON_SETS]


def run_candidates(run: Path, settings: dict, seed: int) -> tuple[list[Candidate], list[str]]:
    """Every stack candidate of a finished run, scored by CV and (``test_accuracy``) on TEST."""
    data_dir = run / "data"
    data, cv_rows, test_rows = model_data(
        pd.read_parquet(data_dir / "03_primary" / "epoch_table.parquet"),
        pd.read_parquet(data_dir / "05_model_input" / "folds.parquet"),
    )
    output = data_dir / "07_model_output"
    oof = pd.read_parquet(output / "base_oof_probabilities.parquet")
    test = pd.read_parquet(output / "base_test_probabilities.parquet")
    meta, models, _ = stack_input(oof, test, data, cv_rows, test_rows)
    candidates = scored_candidates(models, data.classes, settings, seed, meta, cv_rows)
    truth = data.labels(test_rows)
    for candidate in candidates:
        proba = candidate.model.fit(meta, cv_rows).predict_proba(meta, test_rows)
        decided = np.asarray(data.classes, dtype=object)[proba.argmax(axis=1)]
        candidate.test_accuracy = float((decided == truth).mean())
    return candidates, models


def worst_fold(candidates: list[Candidate], models: list[str], z: float) -> Candidate:
    """The platform's rule until 2026-12-07, kept here as the peer it is measured against."""
    best = max(candidates, key=Candidate.rank)
    tied = [c for c in candidates if not best.separated_from(c, z)]

    def robust(c: Candidate) -> tuple:
        hedge = 2 if c.name == "cawpe" else int(c.name not in models)
        return min(c.fold_macro_f1, default=c.macro_f1), hedge, *c.rank()

    return max(tied, key=robust)


def rule_choices(candidates: list[Candidate], models: list[str], settings: dict) -> dict:
    """Each rule's chosen candidate."""
    by_name = {c.name: c for c in candidates}
    no_noise = {k: v for k, v in settings.items() if k != "noise_z"}
    return {
        "platform": choose(candidates, models, settings),
        "worst_fold": worst_fold(candidates, models, float(settings["noise_z"])),
        "pooled": max(candidates, key=Candidate.rank),
        "base_rule": choose(candidates, models, no_noise),
        "cawpe": by_name.get("cawpe", choose(candidates, models, settings)),
    }


def tasks(train_files: list[str], swap: bool) -> list[tuple[str, Path, Path]]:
    pairs = dataset_pairs(train_files)
    return pairs + [(f"{name} swapped", test, train) for name, train, test in pairs if swap]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_files", nargs="*", help="<Name>_TRAIN.ts files (default: see above)")
    parser.add_argument(
        "--swap", action="store_true", help="also each pair with TRAIN and TEST exchanged"
    )
    args = parser.parse_args()
    stacking = uea_stacking()
    settings, seed = stacking["stack"], int(stacking["seed"])
    rows = []
    for name, train, test in tasks(args.train_files or default_train_files(), args.swap):
        with tempfile.TemporaryDirectory(prefix="stack-rules-") as workdir:
            run = platform_run(train, test, Path(workdir), None)
            candidates, models = run_candidates(Path(workdir), settings, seed)
        best_base = max(c.test_accuracy for c in candidates if c.name in models)
        print(
            f"\n{name}: best base model on TEST {best_base:.3f} (kedro run {run['seconds']:.0f} s)"
        )
        for c in candidates:
            print(
                f"  {c.name:<18} CV macro F1 {c.macro_f1:.3f}  log loss {c.log_loss:.3f}  "
                f"TEST {c.test_accuracy:.3f}"
            )
        row = {"task": name}
        for rule, chosen in rule_choices(candidates, models, settings).items():
            row[rule] = chosen.test_accuracy - best_base
            print(f"  rule {rule:<11} -> {chosen.name:<18} {row[rule]:+.3f}")
        rows.append(row)
    table = pd.DataFrame(rows).set_index("task")
    print("\nTEST accuracy minus the best base model's, per task and rule:")
    print(table.round(3).to_string())
    print(table.mean().round(4).to_string())
    print(f"stack_minus_best_base={table['platform'].mean():.4f}")


if __name__ == "__main__":
    main()
