"""The same weights from the same data on every x86-64 machine: torch's CPU kernels pinned to AVX2.

torch picks its vectorised kernels (ATen) and its oneDNN convolutions per CPU, and the AVX-512
versions round differently from the AVX2 ones: the same epochs and seed trained other networks
on an AVX-512 machine than on an AVX2 one (docs/tracking.md). Every x86-64 CPU since 2013 runs
the AVX2 kernels, so asking for them everywhere makes training bit-identical across machines,
at no measurable cost on the machines we timed. A user who sets ``ATEN_CPU_CAPABILITY`` or
``ONEDNN_MAX_CPU_ISA`` (e.g. ``avx512`` / ``ALL`` for speed on one machine) keeps that choice.
"""

from __future__ import annotations

import os
import platform


def _has_avx2() -> bool:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return bool(__cpu_features__.get("AVX2") and __cpu_features__.get("FMA3"))


def pin_cpu_kernels() -> None:
    """Ask torch for its AVX2 kernels on x86-64 CPUs that have AVX2 (before torch's first op)."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not _has_avx2():
        return
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
