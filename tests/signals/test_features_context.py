import numpy as np
import pandas as pd
import pytest

from epochstack.signals.features import add_context_features

CONFIG = {"context": {"features": ["*_logpow_*"], "half_window": 1, "stats": ["mean", "std"]}}


def table(recordings: dict[str, list[int]]) -> pd.DataFrame:
    rows = [(f"{rid}_{i:06d}", rid, i) for rid, indices in recordings.items() for i in indices]
    return pd.DataFrame(rows, columns=["epoch_id", "recording_id", "epoch_index"])


def test_context_never_crosses_a_recording_boundary():
    epochs = table({"r1": [0, 1, 2, 3], "r2": [0, 1, 2, 3]})
    features = pd.DataFrame(
        {"epoch_id": epochs["epoch_id"], "x_spectral_logpow_a": [1.0] * 4 + [5.0] * 4}
    )
    out = add_context_features(features, epochs, CONFIG)
    np.testing.assert_allclose(out["x_spectral_logpow_a_ctx_cmean3"], [1.0] * 4 + [5.0] * 4)
    np.testing.assert_allclose(out["x_spectral_logpow_a_ctx_pmean2"], [1.0] * 4 + [5.0] * 4)
    np.testing.assert_allclose(out["x_spectral_logpow_a_ctx_cstd3"], 0.0)
    np.testing.assert_allclose(out["x_spectral_logpow_a_ctx_rnorm"], 0.0)


def test_past_window_uses_no_future_epoch_and_windows_stop_at_gaps():
    epochs = table({"r1": [0, 1, 2, 5, 6]})  # epochs 3 and 4 were excluded
    values = [1.0, 2.0, 4.0, 8.0, 16.0]
    features = pd.DataFrame({"epoch_id": epochs["epoch_id"], "x_spectral_logpow_a": values})
    out = add_context_features(features, epochs, CONFIG)
    np.testing.assert_allclose(out["x_spectral_logpow_a_ctx_pmean2"], [1.0, 1.5, 3.0, 8.0, 12.0])
    np.testing.assert_allclose(out["x_spectral_logpow_a_ctx_cmean3"], [1.5, 7 / 3, 3.0, 12.0, 12.0])
    # Changing a future value leaves every past-only feature before it unchanged.
    features.loc[4, "x_spectral_logpow_a"] = 1000.0
    changed = add_context_features(features, epochs, CONFIG)["x_spectral_logpow_a_ctx_pmean2"]
    np.testing.assert_allclose(changed[:4], out["x_spectral_logpow_a_ctx_pmean2"][:4])


def test_rows_keep_their_order_and_only_configured_columns_get_context():
    epochs = table({"b": [0, 1, 2], "a": [0, 1, 2]})
    shuffled = epochs.iloc[[4, 0, 2, 1, 5, 3]].reset_index(drop=True)
    features = pd.DataFrame(
        {
            "epoch_id": shuffled["epoch_id"],
            "x_spectral_logpow_a": np.arange(6.0),
            "x_time_std": np.ones(6),
        }
    )
    out = add_context_features(features, epochs, CONFIG)
    assert list(out["epoch_id"]) == list(shuffled["epoch_id"])
    assert not any(c.startswith("x_time_std_ctx") for c in out)
    # Recording "a" in time order (a0, a1, a2) has values 5, 0, 4.
    by_id = out.set_index("epoch_id")
    assert by_id.loc["a_000001", "x_spectral_logpow_a_ctx_cmean3"] == pytest.approx(3.0)
    assert by_id.loc["a_000000", "x_spectral_logpow_a_ctx_pmean2"] == pytest.approx(5.0)
    # median 4, IQR 4.5 - 2 = 2.5
    assert by_id.loc["a_000000", "x_spectral_logpow_a_ctx_rnorm"] == pytest.approx((5 - 4) / 2.5)


def test_epochs_missing_from_the_table_are_an_error():
    epochs = table({"r1": [0, 1]})
    features = pd.DataFrame({"epoch_id": ["r9_000000"], "x_spectral_logpow_a": [1.0]})
    with pytest.raises(ValueError, match="epoch_table"):
        add_context_features(features, epochs, CONFIG)
