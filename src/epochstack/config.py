"""Typed parameters: pydantic schemas checked before any node runs (see ``hooks.py``).

A wrong type, value or key (``splits.n_folds: four``, ``preprocessing.epoch.step_s: half``,
``dataset.edf.pathh``) stops ``kedro run`` with one :class:`~epochstack.errors.ParameterError`
naming the dotted parameter, before anything is read, computed or saved. Nodes keep receiving
plain dictionaries, so kedro-mlflow logs every parameter flattened under its dotted name.

Only blocks whose layout the code fixes are strict (unknown keys refused); free-form settings
(estimator keyword arguments, search spaces, feature bands) are checked where they are used.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from epochstack.errors import ParameterError


class _Strict(BaseModel):
    # Nodes receive the raw values, so a value must already have its type ('30' or 'inf' as a
    # string is refused, not coerced), and numbers must be finite.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class SyntheticParams(_Strict):
    task: Literal["sleep", "seizure"] = "sleep"
    n_subjects: int = Field(10, ge=1)
    hours_per_subject: float = Field(8.0, gt=0, le=24)
    sfreq: float | None = Field(None, gt=0)
    seed: int = 42
    difficulty: Literal["realistic", "easy"] = "realistic"
    population: str | None = None


class UeaParams(_Strict):
    unequal_length: Literal["resample", "pad", "truncate", "error"] = "resample"
    groups: str | None = None


class EdfParams(_Strict):
    path: str | None = None
    hypnogram: Literal["auto", "annotations", "edf", "csv"] = "auto"
    subject_pattern: str = r"^([^_\-.]+)"
    label_epoch_s: float = Field(30.0, gt=0)
    expected_sfreq: float | None = Field(None, gt=0)
    wake_margin_min: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _pattern_compiles(self):
        try:
            re.compile(self.subject_pattern)
        except re.error as error:
            raise ValueError(
                f"subject_pattern is not a valid regular expression ({error})"
            ) from error
        return self


class H5Params(_Strict):
    x_path: str | None = None
    y_path: str | None = None
    dataset_key: str = "features"
    n_meta_columns: int = Field(11, ge=0)
    subject_column: int = Field(0, ge=0)
    label_column: str | None = None
    channel_name: str = "EEG"


class MatParams(_Strict):
    path: str | None = None
    signals_variable: str = "signals"
    sfreq_variable: str = "sfreq"
    channels_variable: str = "channel_names"
    labels_variable: str | None = "labels"
    label_epoch_s: float = Field(30.0, gt=0)
    label_codes: dict[int, str] | None = None
    subject_pattern: str = r"^(SC4\d{2}|ST7\d{2}|sub-[^_.]+|[^_\-.]+)"


class CsvParams(_Strict):
    signals_path: str | None = None
    events_path: str | None = None
    time_column: str = "time"
    recording_column: str = "recording_id"
    subject_column: str = "subject_id"
    label_column: str | None = None
    channel_types: dict[str, Literal["eeg", "eog", "emg", "acc", "hr", "misc"]] | None = None


class DatasetParams(_Strict):
    format: Literal["synthetic", "edf", "mat", "h5", "uea_ts", "csv"] = "synthetic"
    synthetic: SyntheticParams = SyntheticParams()
    label_mapping: Literal["three_class", "aasm", "none"] = "three_class"
    channels: list[str] | None = None
    sfreq: float | None = Field(None, gt=0)
    train_path: str | None = None
    test_path: str | None = None
    uea: UeaParams = UeaParams()
    edf: EdfParams = EdfParams()
    mat: MatParams = MatParams()
    h5: H5Params = H5Params()
    csv: CsvParams = CsvParams()


class FilterParams(_Strict):
    l_freq: float | None = Field(None, ge=0)
    h_freq: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _band_is_ordered(self):
        if self.l_freq and self.h_freq and self.l_freq >= self.h_freq:
            raise ValueError(
                f"l_freq {self.l_freq:g} Hz is not below h_freq {self.h_freq:g} Hz (an empty band)"
            )
        return self


class EpochParams(_Strict):
    window_s: float = Field(30.0, gt=0)
    step_s: float = Field(30.0, gt=0)
    min_event_overlap: float = Field(0.5, ge=0, le=1)
    background_label: str = "background"


class ArtefactParams(_Strict):
    flat_std: float = Field(0.01, ge=0)
    clip_fraction: float = Field(0.05, gt=0, le=1)
    extreme_abs: dict[str, Annotated[float, Field(gt=0)]] = {}
    exclude: bool = False


class PreprocessingParams(_Strict):
    filters: dict[str, FilterParams] = {}
    notch_hz: float | None = Field(None, gt=0)
    resample_hz: float | None = Field(None, gt=0)
    epoch: EpochParams = EpochParams()
    artefacts: ArtefactParams = ArtefactParams()


class SplitParams(_Strict):
    method: Literal[
        "stratified_group_kfold", "group_kfold", "leave_one_subject_out", "stratified_blocks"
    ] = "stratified_group_kfold"
    n_folds: int = Field(4, ge=2)
    test_subjects: list[str] | None = None
    n_test_subjects: int = Field(2, ge=0)
    seed: int = 42


class ExecutorParams(_Strict):
    backend: Literal["local", "dask"] = "local"
    address: str | None = None
    n_workers: int = Field(2, ge=1)


class InferenceParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    dataset: DatasetParams = DatasetParams()


class EvaluationProtocol(BaseModel):
    model_config = ConfigDict(extra="allow")
    protocol: Literal["auto", "nested", "non_nested"] = "auto"


# Top-level parameter -> schema. Blocks absent from the parameters are not checked.
SCHEMAS: dict[str, type[BaseModel]] = {
    "dataset": DatasetParams,
    "preprocessing": PreprocessingParams,
    "splits": SplitParams,
    "executor": ExecutorParams,
    "inference": InferenceParams,
    "evaluation": EvaluationProtocol,
}


def _dotted(prefix: str, location: tuple) -> str:
    return ".".join([prefix, *(str(part) for part in location)])


def _problem(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "is not a known parameter (a typo?)."
    value = error.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    return f"{error['msg'][0].lower()}{error['msg'][1:]}{shown}."


def validate_parameters(params: dict[str, Any]) -> None:
    """Check every known block of ``params``; one ``ParameterError`` lists what is wrong."""
    problems = []
    for name, schema in SCHEMAS.items():
        if name not in params:
            continue
        try:
            schema.model_validate(params[name] if params[name] is not None else {})
        except ValidationError as error:
            problems += [(_dotted(name, e["loc"]), _problem(e)) for e in error.errors()]
    storage = params.get("optuna_storage")
    if isinstance(storage, str) and re.search(r"://[^/@\s]*:[^/@\s]*@", storage):
        problems.append(
            (
                "optuna_storage",
                "holds a password, which would be logged to MLflow and written to dvc.lock "
                "(set the URL in the OPTUNA_STORAGE environment variable instead)",
            )
        )
    if len(problems) == 1:
        raise ParameterError(
            *problems[0], "correct it in conf/<env>/parameters*.yml or with --params."
        )
    if problems:
        raise ParameterError(
            "parameters",
            "; ".join(f"{name} {problem.rstrip('.')}" for name, problem in problems) + ".",
            "correct them in conf/<env>/parameters*.yml or with --params.",
        )
