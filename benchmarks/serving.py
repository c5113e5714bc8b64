"""Serving: an 8-h night through `kedro serve`, end to end, in ms per epoch on CPU, with the
default stack and with a tabular-only stack; then a bounded load run.

    python benchmarks/serving.py                           # trains both stacks first (~4 min idle)
    python benchmarks/serving.py --project /tmp/es-bench-serving/project   # reuse them
    python benchmarks/serving.py --clients 8 --uploads 20 --repeats 3
    python benchmarks/serving.py --profile                 # where the time of one night goes

Models: a scratch copy of the project (conf/, its own data/ and mlflow.db) trains the default
stack (`kedro run`: logreg, hgb, extra_trees and the cnn_bilstm network on 10 synthetic nights)
and a tabular-only stack (`kedro run --params deep_models.enabled=[]`); each registers a version
of `epochstack-sleep`. Each is served by `kedro serve --model models:/epochstack-sleep/<v>` in
its own process (uvicorn, one recording labelled at a time, the defaults).

Night: a new 8-h synthetic night (960 epochs of 30 s, 4 channels at 100 Hz, a subject no model
saw) written as EDF (23 MB). One request = upload over loopback, reading, filtering, epoching,
features, every base model, the stack, the CSV answer; its wall time on the client divided by
960 is the ms/epoch (median of ``--repeats`` requests, after the service's own warm-up).

Load run (default stack): ``--clients`` threads each send ``--uploads`` uploads of the shipped
1-h sample (data/01_raw/samples/night.edf, 120 epochs) one after another: latency p50/p95 per
upload, errors (any answer but 200), epochs labelled per second, and the service's peak resident
memory (VmHWM of its process: model loading and labelling included). The service labels one
recording at a time and queues the others (``--max-queue`` 16 by default), so with 8 clients a
request waits for about 7 others: latency measures the queue, epochs/s the throughput.

The machine is shared: the load average before and after is printed with the numbers.
Last line: ``ms_per_epoch=<default> tabular_ms_per_epoch=<...> load_p50_s=<...> load_p95_s=<...>
errors=<n> peak_rss_mb=<...>``. The target (the spec this platform replaces): <= 50 ms/epoch.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd

from epochstack.scratch import copy_project

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = PROJECT_ROOT / "data/01_raw/samples/night.edf"
NAME = "epochstack-sleep"
STACKS = {"default": [], "tabular": ["--params", "deep_models.enabled=[]"]}
ENV = {
    **os.environ,
    "DO_NOT_TRACK": "1",
    "KEDRO_DISABLE_TELEMETRY": "true",
    "MPLBACKEND": "Agg",
}
ENV.pop("MLFLOW_TRACKING_URI", None)
KEDRO = str(Path(sys.executable).with_name("kedro"))


def trained_models(project: Path) -> dict[str, str]:
    """``stack -> models:/epochstack-sleep/<v>``: trained in ``project`` unless done before."""
    record = project / "bench_models.json"
    if record.exists():
        return json.loads(record.read_text())
    from mlflow import MlflowClient

    models = {}
    for stack, args in STACKS.items():
        start = time.perf_counter()
        subprocess.run([KEDRO, "run", *args], cwd=project, env=ENV, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        uri = f"sqlite:///{project / 'mlflow.db'}"
        latest = max(
            int(v.version) for v in MlflowClient(uri, uri).search_model_versions(f"name='{NAME}'")
        )
        models[stack] = f"models:/{NAME}/{latest}"
        print(f"trained the {stack} stack ({models[stack]}) in {time.perf_counter() - start:.0f} s")
    record.write_text(json.dumps(models))
    return models


def eight_hour_night(folder: Path) -> tuple[Path, int]:
    """A new 8-h night (a subject no model saw) as EDF, and its number of epochs."""
    from epochstack.io.edf_writer import write_edf
    from epochstack.synthetic import generate_sleep_recording

    rec = generate_sleep_recording(37, hours=8.0, sfreq=100.0, seed=9091)
    return write_edf(rec, folder / "night-8h.edf"), len(rec.epoch_labels)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """``kedro serve`` on one model, in its own process."""

    def __init__(self, project: Path, model: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (project / f"serve-{self.port}.log").open("w")
        start = time.perf_counter()
        self.process = subprocess.Popen(
            [KEDRO, "serve", "--model", model, "--port", str(self.port)],
            cwd=project, env=ENV, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"kedro serve exited; see {self.log.name}")
            try:
                httpx.get(f"{self.url}/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        self.ready_s = time.perf_counter() - start

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


def label(url: str, path: Path, client: httpx.Client) -> tuple[float, int, str]:
    """Seconds, HTTP status and body of one upload of ``path``."""
    start = time.perf_counter()
    with path.open("rb") as file:
        response = client.post(f"{url}/predict", files={"file": (path.name, file)})
    return time.perf_counter() - start, response.status_code, response.text


def night_latency(service: Service, night: Path, n_epochs: int, repeats: int) -> list[float]:
    """ms/epoch of each of ``repeats`` uploads of the night."""
    out = []
    with httpx.Client(timeout=1800) as client:
        for _ in range(repeats):
            seconds, status, body = label(service.url, night, client)
            assert status == 200, body[:300]
            assert len(pd.read_csv(io.StringIO(body))) == n_epochs
            out.append(1000 * seconds / n_epochs)
    return out


def load_run(service: Service, clients: int, uploads: int) -> dict:
    """``clients`` threads x ``uploads`` uploads of the 1-h sample: latencies, errors, epochs/s."""

    def one_client(_):
        results = []
        with httpx.Client(timeout=3600) as client:
            for _ in range(uploads):
                seconds, status, body = label(service.url, SAMPLE, client)
                results.append((seconds, status, body.count("\n") - 1 if status == 200 else 0))
        return results

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for rs in pool.map(one_client, range(clients)) for r in rs]
    wall = time.perf_counter() - start
    latencies = sorted(s for s, _, _ in results)
    return {
        "uploads": len(results),
        "errors": sum(status != 200 for _, status, _ in results),
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "epochs_per_s": sum(n for _, _, n in results) / wall,
        "wall_s": wall,
    }


def profile(project: Path, model: str, night: Path) -> None:
    """cProfile of labelling the night in this process, top functions by cumulative time."""
    import cProfile
    import pstats

    from epochstack.service import load_served_model
    from epochstack.service.uploads import label_file

    os.chdir(project)
    served = load_served_model(model, f"sqlite:///{project / 'mlflow.db'}")
    label_file(SAMPLE, served)  # warm-up, as the service does
    profiler = cProfile.Profile()
    profiler.runcall(label_file, night, served)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=None, help="a scratch project to reuse")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    project = args.project or Path(tempfile.mkdtemp(prefix="es-bench-serving-")) / "project"
    if not project.exists():
        copy_project(PROJECT_ROOT, project)
    models = trained_models(project)
    night, n_epochs = eight_hour_night(project)
    if args.profile:
        profile(project, models["default"], night)
        return
    load = os.getloadavg()
    print(f"project {project}; {os.cpu_count()} CPUs; load average before {load[0]:.2f}")
    rows, numbers = [], {}
    for stack, model in models.items():
        service = Service(project, model)
        try:
            per_epoch = night_latency(service, night, n_epochs, args.repeats)
            numbers[stack] = statistics.median(per_epoch)
            rows.append(
                f"| {stack} | {model} | {service.ready_s:.0f} | {n_epochs} | "
                f"{numbers[stack]:.1f} | {min(per_epoch):.1f} | {service.peak_rss_mb():.0f} |"
            )
            if stack == "default":
                loaded = load_run(service, args.clients, args.uploads)
                loaded["peak_rss_mb"] = service.peak_rss_mb()
        finally:
            service.stop()
    print(
        "| stack | model | ready (s) | epochs | ms/epoch (median) | ms/epoch (best) | peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"load run (default stack, {args.clients} clients x {args.uploads} uploads of the 1-h "
        f"sample): {loaded['uploads']} uploads, {loaded['errors']} errors, p50 "
        f"{loaded['p50_s']:.2f} s, p95 {loaded['p95_s']:.2f} s, {loaded['epochs_per_s']:.0f} "
        f"epochs/s, {loaded['wall_s']:.0f} s, peak RSS {loaded['peak_rss_mb']:.0f} MB"
    )
    print(f"load average after {os.getloadavg()[0]:.2f}")
    print(
        f"ms_per_epoch={numbers['default']:.1f} tabular_ms_per_epoch={numbers['tabular']:.1f} "
        f"load_p50_s={loaded['p50_s']:.2f} load_p95_s={loaded['p95_s']:.2f} "
        f"errors={loaded['errors']} peak_rss_mb={loaded['peak_rss_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
