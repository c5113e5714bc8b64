"""The ASGI app (FastAPI): recordings in, labels out.

- ``POST /predict``: a recording as the multipart field ``file`` (format from the extension) ->
  one row per epoch, the inference pipeline's columns, as CSV (default, ``?format=csv``) or JSON
  records (``?format=json``);
- ``GET /model``: the model card (name, version, classes, what it reads, the training run and its
  test metrics) and the service's limits;
- ``GET /health``: 200 once the model is loaded and has labelled its own input example (numba
  kernels and torch compile on first use, so the first upload is not slow); OpenAPI at ``/docs``.

Bad input (an empty file, a wrong extension, a truncated EDF, a recording without the model's
channels...) gets a 4xx whose ``detail`` is the one line the pipeline gives (file, problem,
fix); an upload over the size limit gets 413 before its body is read; an internal error gets 500
with a reference to the service log, never a path or a traceback. At most ``max_concurrent``
recordings are labelled at once and ``max_queue`` wait; more get 503 with ``Retry-After``.
Labelling runs in worker threads, so ``/health`` answers while recordings are labelled.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import anyio
import numpy as np
import pandas as pd
from fastapi import APIRouter, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from threadpoolctl import threadpool_limits

import epochstack
from epochstack.errors import InputDataError
from epochstack.io.edf import channel_type
from epochstack.io.edf_writer import write_edf
from epochstack.service.model import ServedModel
from epochstack.service.uploads import UPLOAD_FORMATS, UnsupportedFormat, label_file, safe_file_name
from epochstack.serving import RECORDING, SUBJECT, TIME
from epochstack.signals.recording import Recording

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


@dataclass(frozen=True)
class ServiceSettings:
    """Limits of the service (``kedro serve`` options)."""

    max_upload_mb: float = 1024.0  # larger uploads get 413 (a declared size: before any byte)
    max_concurrent: int = 1  # recordings labelled at once
    max_queue: int = 16  # uploads waiting for a slot; more get 503
    threads: int = 1  # BLAS/OpenMP threads per recording (more oversubscribe a shared machine)
    workdir: str | None = None  # where uploads are written (default: the system temp folder)
    readers: dict | None = None  # reader settings (inference.dataset): .mat variables, CSV columns


class Gate:
    """At most ``max_concurrent`` recordings labelled at once, ``max_queue`` waiting."""

    def __init__(self, max_concurrent: int, max_queue: int):
        self.max_concurrent, self.max_queue = int(max_concurrent), int(max_queue)
        self.running = self.waiting = 0
        self._slots = asyncio.Semaphore(self.max_concurrent)

    def state(self) -> dict:
        return {
            "max_concurrent": self.max_concurrent,
            "max_queue": self.max_queue,
            "labelling": self.running,
            "waiting": self.waiting,
        }

    @asynccontextmanager
    async def slot(self):
        if self.running >= self.max_concurrent and self.waiting >= self.max_queue:
            raise HTTPException(
                503,
                f"busy: {self.running} recording(s) being labelled and {self.waiting} waiting "
                f"(max_queue {self.max_queue}). Fix: retry later.",
                headers={"Retry-After": "10"},
            )
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()


def example_recording(example: pd.DataFrame) -> Recording:
    """The first recording of an input example (the samples table of the MLflow Model)."""
    first = example[example[RECORDING] == example[RECORDING].iloc[0]]
    channels = [c for c in example.columns if c not in (TIME, RECORDING, SUBJECT)]
    return Recording(
        recording_id="input_example",
        subject_id="input_example",
        signals=first[channels].to_numpy(np.float32).T,
        sfreq=float(1.0 / np.median(np.diff(first[TIME].to_numpy(float)))),
        channel_names=channels,
        channel_types=[channel_type(c) for c in channels],
    )


def warm_up(model: ServedModel, workdir: Path) -> float:
    """Label the model's own input example once as an uploaded CSV and once as an EDF file (the
    first EDF read costs seconds of imports), so that the first upload is as fast as the next;
    returns the seconds."""
    if model.input_example is None:
        logger.warning("Model %s/%s has no input example: no warm-up.", model.name, model.version)
        return 0.0
    folder = Path(tempfile.mkdtemp(prefix="warm-up-", dir=workdir))
    start = time.perf_counter()
    try:
        model.input_example.to_csv(folder / "input_example.csv", index=False)
        label_file(folder / "input_example.csv", model)
        try:
            label_file(write_edf(example_recording(model.input_example), folder / "ex.edf"), model)
        except InputDataError as error:  # e.g. channel names longer than EDF's 16 characters
            logger.warning("No EDF warm-up: %s", error)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return time.perf_counter() - start


def limited(threads: int, func: Callable, *args):
    """``func(*args)`` with BLAS and OpenMP pools of ``threads`` threads in this thread: one
    thread per recording labels faster than two on a loaded machine (no spinning pools) and
    leaves the other cores to the other slots (``max_concurrent``)."""
    with threadpool_limits(limits=int(threads)):
        return func(*args)


def _one_line(error: InputDataError, folder: Path) -> str:
    """The error's line, with the upload folder left out (the client knows its file's name)."""
    return str(error).replace(f"{folder}/", "").replace(str(folder), "upload")


router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict:
    """200 once the model is loaded and warmed up."""
    served = request.app.state.model
    return {
        "status": "ok",
        "model": f"{served.name}/{served.version}",
        **request.app.state.gate.state(),
    }


@router.get("/model")
async def model_card(request: Request) -> dict:
    """The model card and the service's limits."""
    state = request.app.state
    service = {
        **state.gate.state(),
        "threads_per_recording": state.settings.threads,
        "max_upload_mb": state.settings.max_upload_mb,
        "formats": {ext: kind for ext, (_, kind) in UPLOAD_FORMATS.items()},
    }
    return {**state.model.card, "service": service}


@router.post("/predict", response_class=Response)
async def predict(
    request: Request,
    file: Annotated[UploadFile, File(description="The recording: .edf .bdf .mat .h5 .csv")],
    format: Annotated[Literal["csv", "json"], Query(description="csv or json")] = "csv",
) -> Response:
    """Label every epoch of the uploaded recording."""
    state, ref = request.app.state, uuid.uuid4().hex[:8]
    folder = Path(tempfile.mkdtemp(prefix=f"upload-{ref}-", dir=state.workdir))
    try:
        path = folder / safe_file_name(file.filename)
        await anyio.to_thread.run_sync(_save, file, path)
        start = time.perf_counter()
        async with state.gate.slot():
            table = await anyio.to_thread.run_sync(
                limited,
                state.settings.threads,
                label_file,
                path,
                state.model,
                state.settings.readers,
            )
    except UnsupportedFormat as error:
        raise HTTPException(415, _one_line(error, folder)) from None
    except InputDataError as error:
        logger.info("Refused upload %s: %s", ref, _one_line(error, folder))
        raise HTTPException(422, _one_line(error, folder)) from None
    except HTTPException:
        raise
    except Exception:  # noqa: BLE001 - logged with its traceback; the client gets a reference
        logger.exception("Internal error labelling upload %s", ref)
        raise HTTPException(
            500, f"internal error labelling the recording (reference {ref} in the service log)."
        ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.perf_counter() - start
    logger.info(
        "Labelled %s: %d epochs in %.2f s (%.1f ms/epoch).",
        path.name,
        len(table),
        seconds,
        1000 * seconds / max(len(table), 1),
    )
    headers = {"X-Model": f"{state.model.name}/{state.model.version}"}
    if format == "json":
        return JSONResponse(table.to_dict(orient="records"), headers=headers)
    return Response(table.to_csv(index=False), media_type="text/csv", headers=headers)


async def one_line_validation_error(request: Request, error: RequestValidationError):
    """A malformed request (no ``file`` field, an unknown ``format``) as one line."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
    )
    return JSONResponse(
        {
            "detail": f"request: {problems}. Fix: POST the recording as multipart field 'file' "
            "(curl -F file=@night.edf URL/predict), format csv or json."
        },
        status_code=422,
    )


def create_app(
    model: ServedModel | Callable[[], ServedModel], settings: ServiceSettings | None = None
) -> FastAPI:
    """The app serving ``model`` (or what ``model()`` loads at startup)."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        app.state.workdir = Path(settings.workdir or tempfile.gettempdir())
        app.state.workdir.mkdir(parents=True, exist_ok=True)
        served = model if isinstance(model, ServedModel) else await anyio.to_thread.run_sync(model)
        seconds = await anyio.to_thread.run_sync(
            limited, settings.threads, warm_up, served, app.state.workdir
        )
        app.state.model = served
        app.state.gate = Gate(settings.max_concurrent, settings.max_queue)
        logger.info(
            "Serving %s/%s (warm-up %.1f s): labels %d recording(s) at once (%d thread(s) "
            "each), %d may wait; uploads up to %g MB.",
            served.name,
            served.version,
            seconds,
            settings.max_concurrent,
            settings.threads,
            settings.max_queue,
            settings.max_upload_mb,
        )
        yield

    app = FastAPI(
        title="epochstack",
        version=epochstack.__version__,
        summary="Recordings in, per-epoch labels and probabilities out.",
        lifespan=lifespan,
        max_body_size=int(settings.max_upload_mb * 1024 * 1024),
    )
    app.add_exception_handler(RequestValidationError, one_line_validation_error)
    app.include_router(router)
    return app


def _save(upload: UploadFile, path: Path) -> None:
    """Copy the spooled upload to ``path`` chunk by chunk (never whole in memory)."""
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)
