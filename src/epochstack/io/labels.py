"""Sleep-stage names: one vocabulary for every hypnogram source.

Output names are AASM stages ``W, N1, N2, N3, REM`` plus ``NREM`` for sources that score
NREM as one stage (rodent scoring: Wake / NREM / REM). Rechtschaffen & Kales stages 3 and 4
merge into ``N3``. Unscored epochs, movement time and unknown names give ``None``.
"""

from __future__ import annotations

import re

STAGES = ("W", "N1", "N2", "N3", "REM", "NREM")

_STAGE_ALIASES = {
    "w": "W",
    "wake": "W",
    "awake": "W",
    "a": "W",  # rodent scoring: A(ctive wake)
    "0": "W",
    "1": "N1",
    "n1": "N1",
    "s1": "N1",
    "2": "N2",
    "n2": "N2",
    "s2": "N2",
    "3": "N3",
    "4": "N3",
    "n3": "N3",
    "n4": "N3",
    "s3": "N3",
    "s4": "N3",
    "r": "REM",
    "rem": "REM",
    "5": "REM",
    "paradoxical": "REM",
    "ps": "REM",
    "nrem": "NREM",
    "non-rem": "NREM",
    "nr": "NREM",
    "sws": "NREM",  # rodent scoring: slow-wave sleep = NREM
    "s": "NREM",
}

# Names that are hypnogram entries without a usable stage (they become None labels, not events).
_UNSCORED = {"?", "unscored", "unknown", "movement time", "movement", "mt", "artefact", "artifact"}

_PREFIX = re.compile(r"^\s*(?:sleep\s+stage|sleep_stage|stage)[\s_:-]*", re.IGNORECASE)


def _key(name: str) -> str:
    return _PREFIX.sub("", str(name)).strip().lower()


def normalise_stage(name: str) -> str | None:
    """Map a stage name from any common scheme to ``W, N1, N2, N3, REM, NREM``, or ``None``.

    ``'Sleep stage W'`` -> ``'W'``, ``'Sleep stage 1'`` -> ``'N1'``, ``'3'``/``'4'`` -> ``'N3'``,
    ``'R'``/``'REM'`` -> ``'REM'``, ``'Wake'`` -> ``'W'``, ``'SWS'`` -> ``'NREM'``;
    ``'Sleep stage ?'``, ``'Movement time'`` and unknown names -> ``None``.
    """
    return _STAGE_ALIASES.get(_key(name))


def is_stage_annotation(name: str) -> bool:
    """True when ``name`` is a hypnogram entry (a stage, or an unscored/movement epoch)."""
    key = _key(name)
    return key in _STAGE_ALIASES or key in _UNSCORED or str(name).lower().startswith("sleep stage")
