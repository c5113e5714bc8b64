"""The REST service for real: uvicorn on 127.0.0.1, uploads over HTTP (httpx), the registered
model of the tiny trained project, answers compared with `kedro run --pipelines inference`."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from epochstack.io.edf import load_edf_recording
from epochstack.io.edf_writer import write_edf
from epochstack.io.mat import write_mat
from epochstack.service import ServiceSettings, create_app, load_served_model, resolve_model_uri
from epochstack.service.app import Gate
from epochstack.service.uploads import safe_file_name
from epochstack.synthetic import generate_sleep_recording

pytestmark = pytest.mark.integration

NAME = "epochstack-sleep"


def start_server(app) -> tuple[str, object, threading.Thread]:
    """uvicorn serving ``app`` on a free loopback port, in a thread; returns its URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def registry_uri(trained) -> str:
    project, _ = trained
    return f"sqlite:///{project.path / 'mlflow.db'}"


@pytest.fixture(scope="module")
def served(registry_uri):
    return load_served_model(resolve_model_uri(None, registry_uri), registry_uri)


@pytest.fixture(scope="module")
def service(served, tmp_path_factory):
    settings = ServiceSettings(max_upload_mb=64, workdir=str(tmp_path_factory.mktemp("uploads")))
    url, server, thread = start_server(create_app(served, settings))
    with httpx.Client(base_url=url, timeout=300) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def night_files(tmp_path_factory) -> dict[str, Path]:
    """A new night as EDF (16-bit) and as .mat holding exactly the values the EDF decodes to."""
    folder = tmp_path_factory.mktemp("night")
    rec = generate_sleep_recording(37, hours=0.25, sfreq=100.0, seed=9091)
    (folder / "edf").mkdir()
    (folder / "mat").mkdir()
    edf = write_edf(rec, folder / "edf" / "new-night.edf")
    decoded = load_edf_recording(edf, recording_id="new-night", subject_id="new")
    return {"edf": edf, "mat": write_mat(decoded, folder / "mat" / "new-night.mat")}


def post(client: httpx.Client, path: Path, name: str | None = None, **params) -> httpx.Response:
    with path.open("rb") as file:
        return client.post("/predict", files={"file": (name or path.name, file)}, params=params)


def read_csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), float_precision="round_trip")


def test_edf_and_mat_get_the_labels_of_the_inference_pipeline(trained, service, night_files):
    project, params = trained
    edf = post(service, night_files["edf"])
    assert edf.status_code == 200 and edf.headers["content-type"].startswith("text/csv")
    assert edf.headers["x-model"] == f"{NAME}/1"
    served = read_csv(edf.text)
    mat = post(service, night_files["mat"], format="json")
    assert mat.status_code == 200
    as_json = pd.DataFrame(mat.json())
    assert list(as_json.columns) == list(served.columns)
    assert len(served) == 30 and list(served.columns[:4]) == [
        "epoch_id",
        "recording_id",
        "t_start_s",
        "label",
    ]
    for fmt, folder in (("edf", "edf"), ("mat", "mat")):
        dataset = {"format": fmt, fmt: {"path": str(night_files[folder].parent)}}
        project.run("inference", {**params, "inference": {"dataset": dataset}})
        pipeline = project.catalog().load("inference_predictions")
        answer = served if fmt == "edf" else as_json
        assert list(answer["epoch_id"]) == list(pipeline["epoch_id"])
        assert (answer["label"].astype(str) == pipeline["label"].astype(str)).all()
        np.testing.assert_array_equal(
            answer.filter(like="proba_").to_numpy(), pipeline.filter(like="proba_").to_numpy()
        )


def test_the_model_card_names_the_version_what_it_reads_and_its_test_metrics(service, registry_uri):
    import mlflow

    card = service.get("/model").json()
    assert (card["name"], card["version"]) == (NAME, "1")
    assert card["input"] == {
        "reads": "recordings",
        "channels": ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"],
        "channel_types": ["eeg", "eeg", "eog", "emg"],
        "sampling_rate_hz": 100.0,
        "epoch_length_s": 30.0,
        "samples_per_epoch": 3000,
    }
    assert card["classes"] == ["NREM", "REM", "Wake"] and "cnn_bilstm" in card["base_models"]
    run = mlflow.MlflowClient(registry_uri).get_run(card["training_run"]["run_id"])
    metrics = card["training_run"]["test_metrics"]
    assert metrics["test.cohen_kappa"] == run.data.metrics["test.cohen_kappa"]
    assert card["service"]["max_concurrent"] == 1 and ".mat" in card["service"]["formats"]
    assert service.get("/docs").status_code == 200
    assert "/predict" in service.get("/openapi.json").json()["paths"]


def rewritten_edf(night_files, folder: Path, **changes) -> Path:
    rec = load_edf_recording(night_files["edf"], recording_id="x", subject_id="x")
    for key, value in changes.items():
        setattr(rec, key, value(rec) if callable(value) else value)
    return write_edf(rec, folder / "changed.edf")


def bad_uploads(night_files, folder: Path) -> dict[str, tuple[str, bytes]]:
    """name -> (file name sent, bytes)."""
    edf = night_files["edf"].read_bytes()
    renamed = rewritten_edf(
        night_files, folder, channel_names=lambda r: ["EEG Cz", *r.channel_names[1:]]
    ).read_bytes()
    halved = rewritten_edf(
        night_files, folder, signals=lambda r: r.signals[:, ::2], sfreq=50.0
    ).read_bytes()
    noise = np.random.default_rng(0).bytes(20000)
    return {
        "empty": ("empty.edf", b""),
        "wrong extension": ("notes.txt", b"not a recording\n"),
        "truncated EDF": ("truncated.edf", edf[:3000]),
        "random bytes named .mat": ("noise.mat", noise),
        "a path in the file name": ("../../escape.edf", edf),
        "a channel the model lacks": ("renamed.edf", renamed),
        "another sampling rate": ("slow.edf", halved),
    }


def test_bad_uploads_get_one_line_4xx_and_the_service_keeps_serving(service, night_files, tmp_path):
    answers = {}
    for case, (name, data) in bad_uploads(night_files, tmp_path).items():
        response = service.post("/predict", files={"file": (name, data)})
        detail = response.json()["detail"]
        answers[case] = (response.status_code, detail)
        assert 400 <= response.status_code < 500, (case, response.status_code, detail)
        assert "\n" not in detail and "Traceback" not in detail and "/tmp" not in detail, case
        assert len(response.content) < 2000, case
    assert (
        "channel(s) ['EEG Fpz-Cz'] that the model reads" in answers["a channel the model lacks"][1]
    )
    assert "50 Hz; the model reads 100 Hz" in answers["another sampling rate"][1]
    assert answers["wrong extension"][0] == 415
    assert "holds a path" in answers["a path in the file name"][1]
    assert service.get("/health").json()["status"] == "ok"
    assert post(service, night_files["edf"]).status_code == 200


def test_a_declared_size_over_the_limit_gets_413_before_the_body_is_sent(service):
    with socket.create_connection((service.base_url.host, service.base_url.port), 10) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 2147483648\r\n\r\n--x\r\n"
        )
        s.settimeout(5)  # well before 2 GB could arrive
        assert s.recv(200).startswith(b"HTTP/1.1 413")
    assert service.get("/health").status_code == 200


def test_an_internal_error_is_a_500_without_path_or_traceback(service, night_files, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("/secret/place/model.pkl is corrupt")

    monkeypatch.setattr("epochstack.service.app.label_file", broken)
    response = post(service, night_files["edf"])
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert "secret" not in detail and "Traceback" not in detail and "reference" in detail
    monkeypatch.undo()
    assert post(service, night_files["edf"]).status_code == 200


def test_file_names_are_made_safe_and_paths_refused():
    assert safe_file_name("nuit été 1.EDF") == "nuit_ete_1.edf"
    assert safe_file_name("..hidden..mat") == "hidden.mat"
    for name in ("../x.edf", "a/b.edf", "C:\\x\\night.edf", "night\x00.edf", ".."):
        with pytest.raises(Exception, match="path|control|extension"):
            safe_file_name(name)


def test_the_gate_labels_at_most_max_concurrent_and_refuses_past_the_queue():
    import asyncio

    from fastapi import HTTPException

    async def scenario():
        gate = Gate(max_concurrent=1, max_queue=1)
        async with gate.slot():
            waiting = asyncio.create_task(gate.slot().__aenter__())
            await asyncio.sleep(0.01)
            assert gate.state() == {
                "max_concurrent": 1,
                "max_queue": 1,
                "labelling": 1,
                "waiting": 1,
            }
            with pytest.raises(HTTPException) as busy:
                await gate.slot().__aenter__()
            assert busy.value.status_code == 503 and busy.value.headers["Retry-After"]
        await waiting
        assert gate.state()["labelling"] == 1 and gate.state()["waiting"] == 0

    asyncio.run(scenario())


def test_kedro_serve_starts_on_the_latest_registered_model(trained):
    project, _ = trained
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    kedro = Path(sys.executable).with_name("kedro")
    server = subprocess.Popen(
        [str(kedro), "serve", "--port", str(port)],
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no /health within 180 s"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert health.json()["model"] == f"{NAME}/1"
        card = httpx.get(f"http://127.0.0.1:{port}/model").json()
        assert card["model_uri"] == f"models:/{NAME}/1"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_kedro_serve_names_a_missing_model_on_one_line(trained):
    project, _ = trained
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    kedro = Path(sys.executable).with_name("kedro")
    done = subprocess.run(
        [str(kedro), "serve", "--model", f"models:/{NAME}/9"],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("InputDataError: --model: ")
    assert f"models:/{NAME}/9 is not in the registry" in last and "versions of" in last
    assert "Traceback" not in done.stderr
