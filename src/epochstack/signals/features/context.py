"""Context features: per-recording robust normalisation and rolling windows over nearby epochs.

Windows never leave a recording, nor jump a gap in ``epoch_index`` (excluded epochs): each run
of consecutive epochs is a segment, and a window is clipped to its segment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.signals.features.config import matching_columns, resolve_config


def context_columns(columns: list[str], patterns: list[str]) -> list[str]:
    """Columns matching any of the glob ``patterns``, in column order."""
    return [columns[j] for j in matching_columns(columns, patterns) if columns[j] != "epoch_id"]


def _segment_bounds(
    recording_ids: np.ndarray, epoch_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by (recording, epoch_index): first and last row of each row's segment."""
    n = len(epoch_index)
    new_segment = np.ones(n, dtype=bool)
    new_segment[1:] = (recording_ids[1:] != recording_ids[:-1]) | (np.diff(epoch_index) != 1)
    segment = np.cumsum(new_segment) - 1
    starts = np.flatnonzero(new_segment)
    ends = np.append(starts[1:], n) - 1
    return starts[segment], ends[segment]


def _window_stats(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, stats: list[str]
) -> dict[str, np.ndarray]:
    """Mean / std of ``values[lo[i]:hi[i] + 1]`` for every row ``i`` (all columns at once).

    Cumulative sums give every window in O(n), where pandas would need a per-group rolling.
    """
    zero = np.zeros((1, values.shape[1]))
    cs = np.concatenate([zero, np.cumsum(values, axis=0)])
    count = (hi - lo + 1)[:, None]
    mean = (cs[hi + 1] - cs[lo]) / count
    out = {"mean": mean}
    if "std" in stats:
        cs2 = np.concatenate([zero, np.cumsum(values**2, axis=0)])
        out["std"] = np.sqrt(np.maximum((cs2[hi + 1] - cs2[lo]) / count - mean**2, 0.0))
    unknown = set(stats) - set(out)
    if unknown:
        raise ValueError(
            f"features.context.stats: unknown {sorted(unknown)}; choose from ['mean', 'std']."
        )
    return {stat: out[stat] for stat in stats}


def add_context_features(
    features: pd.DataFrame, epoch_table: pd.DataFrame, config: dict | None
) -> pd.DataFrame:
    """``features`` plus context columns for the configured base features, grouped by recording.

    Adds ``<col>_ctx_rnorm`` ((x - median) / IQR within the recording), ``<col>_ctx_c<stat><2k+1>``
    (centred window of +-k epochs) and ``<col>_ctx_p<stat><k+1>`` (this and k previous epochs).
    Rows keep their order; ``epoch_table`` gives each ``epoch_id`` its recording and position.
    """
    context = resolve_config(config)["context"]
    columns = context_columns(list(features.columns), context["features"])
    if not context["enabled"] or not columns or features.empty:
        return features
    position = pd.Index(epoch_table["epoch_id"]).get_indexer(features["epoch_id"])
    if (position < 0).any():
        missing = features["epoch_id"].to_numpy()[position < 0][:3]
        raise InputDataError(
            "epoch_table",
            f"has no rows for feature epochs {list(missing)}.",
            "compute features from the same epoch_table.",
        )
    rows = epoch_table.iloc[position]
    recording_ids = rows["recording_id"].astype(str).to_numpy()
    epoch_index = rows["epoch_index"].to_numpy(dtype=np.int64)
    order = np.lexsort((epoch_index, recording_ids))
    values = features[columns].to_numpy(dtype=np.float64)[order]
    recording_ids, epoch_index = recording_ids[order], epoch_index[order]
    new: dict[str, np.ndarray] = {}
    if context["robust_normalise"]:
        normalised = np.empty_like(values)
        starts = np.flatnonzero(np.r_[True, recording_ids[1:] != recording_ids[:-1]])
        for start, end in zip(starts, np.append(starts[1:], len(values)), strict=True):
            q25, median, q75 = np.percentile(values[start:end], [25, 50, 75], axis=0)
            iqr = q75 - q25
            normalised[start:end] = np.divide(
                values[start:end] - median, iqr, out=np.zeros_like(values[start:end]), where=iqr > 0
            )
        new.update({f"{c}_ctx_rnorm": normalised[:, j] for j, c in enumerate(columns)})
    k = int(context["half_window"])
    if k > 0:
        seg_start, seg_end = _segment_bounds(recording_ids, epoch_index)
        rows_i = np.arange(len(values))
        windows = {
            f"c{{stat}}{2 * k + 1}": (
                np.maximum(rows_i - k, seg_start),
                np.minimum(rows_i + k, seg_end),
            ),
            f"p{{stat}}{k + 1}": (np.maximum(rows_i - k, seg_start), rows_i),
        }
        for template, (lo, hi) in windows.items():
            for stat, result in _window_stats(values, lo, hi, context["stats"]).items():
                suffix = template.format(stat=stat)
                new.update({f"{c}_ctx_{suffix}": result[:, j] for j, c in enumerate(columns)})
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    added = pd.DataFrame(
        np.column_stack(list(new.values()))[inverse], columns=list(new), index=features.index
    )
    return pd.concat([features, added], axis=1)
