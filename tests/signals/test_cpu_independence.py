"""The same seed gives the same bits on another CPU: synthetic night, filters, features.

Another machine is emulated on this one: numpy without its AVX-512 loops, OpenBLAS with its
Haswell (AVX2) kernels, numba compiling for Haswell. Before the fixes in docs/tracking.md
(BLAS-free sums in the generator, a closed-form filter state, libm logarithms) each of these
changed the data_engineering or feature_engineering outputs.
"""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = """
import hashlib
import numpy as np
from epochstack.signals.features import extract_features
from epochstack.signals.preprocessing import epoch_recording, filter_signals
from epochstack.synthetic import generate_sleep_recording

night = generate_sleep_recording(1, hours=0.5, sfreq=100.0, seed=42)
night.signals = filter_signals(
    night.signals, night.sfreq, night.channel_types,
    {"eeg": {"l_freq": 0.3, "h_freq": 45.0}, "emg": {"l_freq": 10.0, "h_freq": None}}, 50.0,
)
epochs = epoch_recording(night, 30.0, 30.0).epochs
features = extract_features(epochs, night.sfreq, night.channel_names, night.channel_types, {})
for name, value in [("signals", night.signals), ("features", features.to_numpy(np.float64))]:
    print(name, hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest())
"""


def avx512_features() -> list[str]:
    """The AVX-512 feature names numpy sees on this CPU (all of them can be switched off)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return [name for name, present in __cpu_features__.items() if present and "AVX512" in name]


def hashes(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_data_and_features_do_not_depend_on_the_cpu(tmp_path):
    taken = avx512_features()
    if not taken:
        pytest.skip("this CPU has no AVX-512 to take away: nothing to emulate")
    native = hashes({})
    avx2_machine = hashes(
        {
            "NPY_DISABLE_CPU_FEATURES": " ".join(taken),
            "OPENBLAS_CORETYPE": "Haswell",
            "NUMBA_CPU_NAME": "haswell",
            "NUMBA_CACHE_DIR": str(tmp_path / "haswell"),
        }
    )
    assert native.count("\n") == 2 and native == avx2_machine


def test_the_emulated_machine_is_another_cpu():
    """The emulation is real: numpy's own exp changes in the last bit without AVX-512."""
    taken = avx512_features()
    if not taken:
        pytest.skip("this CPU has no AVX-512 to take away: nothing to emulate")
    script = (
        "import numpy as np, hashlib;"
        "x = np.linspace(-20, 20, 100_001);"
        "print(hashlib.sha256(np.exp(x).tobytes()).hexdigest())"
    )
    run = [sys.executable, "-c", script]
    native = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    other = subprocess.run(
        run,
        env=os.environ | {"NPY_DISABLE_CPU_FEATURES": " ".join(taken)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert native != other
    assert hashlib.sha256(np.exp(np.linspace(-20, 20, 100_001)).tobytes()).hexdigest() + "\n" in (
        native,
        other,
    )
