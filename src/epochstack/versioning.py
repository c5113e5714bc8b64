"""DVC's record of a ``kedro run`` that reproduced whole stages: outputs cached, ``dvc.lock`` in step.

Each stage of ``dvc.yaml`` is ``kedro run --pipelines <name>``. A plain ``kedro run`` (the README's
main job) runs those commands outside DVC, so DVC has not seen its outputs: they are not in the
DVC cache, and ``dvc exp run`` can neither restore them nor tell them from the locked ones. Where
they differ from ``dvc.lock`` (another CPU, other library versions) it deletes them and a later
stage fails on a missing file (treeverse/dvc#9915). After such a run the project does what
``dvc commit`` does for it: the outputs go into the DVC cache and ``dvc.lock`` records them, so
``dvc status``, ``dvc repro`` and ``dvc exp run`` continue from what is on disk. ``dvc.lock``
changes only where this run's results differ from the committed ones, and the log says where.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

logger = logging.getLogger(__name__)

LOCK_FILE = "dvc.lock"


def _locked_outputs(project_path: Path) -> dict[str, dict]:
    """Stage name -> its locked outs (path -> hash) from ``dvc.lock`` ({} when there is none)."""
    path = project_path / LOCK_FILE
    stages = (yaml.safe_load(path.read_text()) or {}).get("stages", {}) if path.exists() else {}
    return {
        name: {out["path"]: out.get("md5") for out in stage.get("outs") or []}
        for name, stage in stages.items()
    }


def record_stage_outputs(project_path: Path, stages: list[str]) -> list[str]:
    """Cache the outputs of ``stages`` and record them in ``dvc.lock`` (``dvc commit --force``).

    Returns the stages whose locked outputs changed. Does nothing outside a DVC repository; a
    DVC failure is logged as a warning, never raised: the run itself succeeded.
    """
    if not (project_path / ".dvc").is_dir():
        return []
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    before = _locked_outputs(project_path)
    dvc_logger = logging.getLogger("dvc")
    level, dvc_logger.level = dvc_logger.level, logging.WARNING  # no "Updating lock file" lines
    try:
        with Repo(str(project_path)) as repo:
            known = {stage.name for stage in repo.index.stages}
            for stage in (s for s in stages if s in known):
                repo.commit(stage, force=True)
    except DvcException as error:
        logger.warning(
            "DVC could not record this run's outputs (%s); run `dvc commit` before `dvc exp run`.",
            error,
        )
        return []
    finally:
        dvc_logger.level = level
    after = _locked_outputs(project_path)
    changed = [s for s in stages if s in after and before.get(s) != after[s]]
    if changed:
        logger.warning(
            "DVC: this run's outputs of %s differ from the committed dvc.lock (other code, "
            "parameters, library versions or CPU: docs/tracking.md); dvc.lock now records "
            "them (`git diff dvc.lock`).",
            ", ".join(changed),
        )
    else:
        logger.info(
            "DVC: the outputs of %s are in the DVC cache and equal the committed dvc.lock.",
            ", ".join(s for s in stages if s in after),
        )
    return changed
