"""dvc.yaml against what the pipelines really are: outs = the catalog files each pipeline writes,
deps = its inputs, the catalog files and every epochstack module its nodes import, params = the
parameters its nodes read; reports committed to git, the rest in the DVC cache."""

from __future__ import annotations

import ast
import importlib
import subprocess
from pathlib import Path

import pytest
import yaml

from epochstack.pipeline_registry import TRAINING_PIPELINES

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CONF = ROOT / "conf" / "base"
# Parameters that say where and how work runs, or what is tracked: they change no result.
NOT_RESULTS = {"executor", "staging_dir", "optuna_storage", "inference.serving"}
# Outs neither cached nor committed: rebuilt by `dvc repro` (see dvc.yaml).
REGENERATED = {"data/03_primary/epoch_signals"}


def dvc_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def out_entries(stage: dict) -> dict[str, dict]:
    """Every out of a stage (outs, metrics, plots) -> its options."""
    entries = {}
    for section in ("outs", "metrics", "plots"):
        for item in stage.get(section) or []:
            path, options = next(iter(item.items())) if isinstance(item, dict) else (item, {})
            entries[path] = options or {}
    return entries


def catalog_files() -> dict[str, tuple[str, str | None, str]]:
    """Dataset name -> (catalog file, file path or None, dataset type), from conf/base."""
    found = {}
    for path in sorted(CONF.glob("catalog*.yml")):
        for name, spec in (yaml.safe_load(path.read_text()) or {}).items():
            inner = spec.get("dataset") if isinstance(spec.get("dataset"), dict) else spec
            found[name] = (
                str(path.relative_to(ROOT)),
                inner.get("filepath") or inner.get("path"),
                inner.get("type", spec.get("type")),
            )
    return found


def pipeline(name: str):
    return importlib.import_module(f"epochstack.pipelines.{name}").create_pipeline()


def written_and_read(name: str) -> tuple[set[str], set[str]]:
    nodes = pipeline(name).nodes
    written = {o for n in nodes for o in n.outputs}
    return written, {i for n in nodes for i in n.inputs} - written


def module_file(module: str) -> Path | None:
    base = SRC / module.replace(".", "/")
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def imported_modules(module: str) -> set[str]:
    """epochstack modules (and their packages) that ``module`` imports anywhere in its code."""
    path = module_file(module)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    found = set()
    for name in names:
        parts = name.split(".")
        found |= {
            ".".join(parts[:i])
            for i in range(1, len(parts) + 1)
            if parts[0] == "epochstack" and module_file(".".join(parts[:i]))
        }
    return found


def import_closure(modules: set[str]) -> set[Path]:
    seen, todo = set(), list(modules)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += sorted(imported_modules(module) - seen)
    files = {module_file(m) for m in seen}
    return {
        f.relative_to(ROOT) for f in files if f.read_text().strip()
    }  # an empty __init__.py runs nothing


def code_used_by(name: str) -> set[Path]:
    """Source files of the pipeline's package, of the epochstack dataset classes its catalog
    entries use, and of everything they import."""
    catalog = catalog_files()
    written, read = written_and_read(name)
    dataset_modules = {
        catalog[d][2].rsplit(".", 1)[0]
        for d in written | read
        if d in catalog and str(catalog[d][2]).startswith("epochstack.")
    }
    return import_closure({f"epochstack.pipelines.{name}"} | dataset_modules)


def covered(path: Path, deps: list[str]) -> bool:
    return any(path == Path(dep) or Path(dep) in path.parents for dep in deps)


def parameter_defined(dotted: str) -> str | None:
    """The conf/base parameters file defining ``dotted``, if any."""
    for path in sorted(CONF.glob("parameters*.yml")):
        node = yaml.safe_load(path.read_text()) or {}
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        else:
            return str(path.relative_to(ROOT))
    return None


def stage_params(stage: dict) -> dict[str, list[str]]:
    return {
        file: list(keys or []) for item in stage.get("params") or [] for file, keys in item.items()
    }


STAGES = list(TRAINING_PIPELINES)


def test_one_stage_per_training_pipeline():
    stages = dvc_stages()
    assert list(stages) == STAGES
    for name, stage in stages.items():
        assert stage["cmd"] == f"kedro run --pipelines {name}"


@pytest.mark.parametrize("name", STAGES)
def test_outs_are_the_catalog_files_the_pipeline_writes(name):
    catalog = catalog_files()
    written, _ = written_and_read(name)
    files = {catalog[d][1] for d in written if d in catalog and catalog[d][1]}
    assert set(out_entries(dvc_stages()[name])) == files


@pytest.mark.parametrize("name", STAGES)
def test_deps_hold_inputs_catalog_files_and_imported_code(name):
    stage, catalog = dvc_stages()[name], catalog_files()
    deps = stage["deps"]
    written, read = written_and_read(name)
    inputs = {catalog[d][1] for d in read if d in catalog and catalog[d][1]}
    assert inputs <= set(deps), f"{name}: inputs missing from deps: {sorted(inputs - set(deps))}"
    catalog_conf = {catalog[d][0] for d in written | read if d in catalog}
    assert catalog_conf == {d for d in deps if d.startswith("conf/")}, f"{name}: catalog files"
    code = code_used_by(name)
    missing = sorted(str(p) for p in code if not covered(p, deps))
    assert not missing, f"{name}: modules its nodes import are not deps: {missing}"
    code_deps = [d for d in deps if d.startswith("src/")]
    unused = [d for d in code_deps if not any(covered(p, [d]) for p in code)]
    assert not unused, f"{name}: deps no module of the pipeline imports: {unused}"
    assert all((ROOT / d).exists() for d in code_deps + sorted(catalog_conf))


@pytest.mark.parametrize("name", STAGES)
def test_params_are_the_parameters_the_nodes_read(name):
    tracked = stage_params(dvc_stages()[name])
    for file, keys in tracked.items():
        for key in keys:
            assert parameter_defined(key) == file, f"{name}: {file} does not define {key}"
    _, read = written_and_read(name)
    for parameter in sorted(p.removeprefix("params:") for p in read if p.startswith("params:")):
        if parameter in NOT_RESULTS:
            continue
        file = parameter_defined(parameter)
        keys = tracked.get(file, [])
        assert any(parameter == k or parameter.startswith(f"{k}.") for k in keys), (
            f"{name} reads params:{parameter} ({file}), not in its dvc params"
        )


def test_reports_are_committed_to_git_and_everything_else_cached_or_regenerated():
    outs = {
        path: options
        for stage in dvc_stages().values()
        for path, options in out_entries(stage).items()
    }

    def ignored(path: str) -> bool:
        probe = (
            f"{path}/example.png" if not Path(path).suffix else path
        )  # a file inside a plots folder
        return subprocess.run(["git", "check-ignore", "-q", probe], cwd=ROOT).returncode == 0

    assert all(outs[path].get("cache") is False for path in REGENERATED)
    for path, options in outs.items():
        if options.get("cache", True) or path in REGENERATED:
            assert ignored(path), f"{path} is in the DVC cache or regenerated: git must ignore it"
        else:
            assert path.startswith("data/08_reporting/") and not ignored(path), (
                f"{path} is cache: false: it must be committed to git"
            )


def test_dvc_reads_the_stages():
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        assert sorted(stage.name for stage in repo.index.stages) == sorted(STAGES)
