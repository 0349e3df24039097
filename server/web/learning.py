"""The admin HTTP routes of the learning loop (docs/http-api.md, "Admin"): the next round's
training job, the trainer, the model registry with rollback, and the dataset export. Each is
built with the one admin guard (`server/web/auth.py`); the public chart data is in `public.py`.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from server.learning.data import EXPORT_FORMATS, OUTCOMES, export_to
from server.learning.export import ExportError, zip_export
from server.learning.loop import NoJobRunning, TrainerBusy
from server.web.auth import admin
from server.web.errors import ApiError
from server.web.running import running_learning


async def next_round(request: Request) -> Response:
    """Train now; the next round opens with the candidate once it passes the gate."""
    try:
        job = await running_learning(request).launch("admin", open_next=True)
    except TrainerBusy as error:
        raise ApiError(409, "trainer_busy", str(error)) from error
    except OSError as error:  # the job is recorded as failed with the reason
        raise ApiError(500, "training_data", f"Cannot write the training data: {error}") from error
    return JSONResponse(job.public(), status_code=202)


async def trainer(request: Request) -> Response:
    job = await running_learning(request).status()
    return JSONResponse(job.public() if job else {})


async def cancel(request: Request) -> Response:
    try:
        job = await running_learning(request).cancel()
    except NoJobRunning as error:
        raise ApiError(409, "no_job", str(error)) from error
    return JSONResponse(job.public())


async def models(request: Request) -> Response:
    registry = await asyncio.to_thread(running_learning(request).model_store.models)
    return JSONResponse([m.public() for m in registry])


async def rollback(request: Request) -> Response:
    """Serve a registered, accepted version again: a new round opens bound to it."""
    learning = running_learning(request)
    version = request.path_params["version"]
    model = await asyncio.to_thread(learning.model_store.model, version)
    if model is None:
        raise LookupError(f"There is no model {version!r} in the registry.")
    if not model.accepted:
        raise ApiError(
            409,
            "model_rejected",
            f"{version} failed the gate and may not serve: "
            f"{model.gate.get('reason', 'no reason recorded')}",
        )
    if model.status == "serving":
        raise ApiError(409, "already_serving", f"{version} is already serving.")
    opened = await learning.game.create_round(version, open_now=True)
    return JSONResponse(opened.public())


async def export(request: Request) -> Response:
    """`?format=imagefolder|ndjson|numpy|all&round=N&outcome=verified` → a zip."""
    query = request.query_params
    formats = query.get("format", "all")
    chosen = list(EXPORT_FORMATS) if formats == "all" else formats.split(",")
    if not set(chosen) <= set(EXPORT_FORMATS):
        raise ApiError(
            400, "bad_request", f"`format` is all or one of {', '.join(EXPORT_FORMATS)}."
        )
    rounds = [int(r) for r in query.getlist("round") if r.isdigit()]
    if len(rounds) != len(query.getlist("round")):
        raise ApiError(400, "bad_request", "`round` is a round number.")
    outcomes = query.getlist("outcome")
    if not set(outcomes) <= set(OUTCOMES):
        raise ApiError(400, "bad_request", f"`outcome` is one of {', '.join(OUTCOMES)}.")
    layout = running_learning(request).layout
    work = Path(tempfile.mkdtemp(prefix="export-", dir=layout.root))

    def build() -> Path:
        export_to(layout, work / "dataset", chosen, rounds or None, outcomes or None)
        return zip_export(work / "dataset", work / "dataset.zip")

    try:
        archive = await asyncio.to_thread(build)
    except ExportError as error:  # e.g. nothing matches the selection
        shutil.rmtree(work, ignore_errors=True)
        raise ApiError(400, "export_refused", str(error)) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FileResponse(
        archive,
        media_type="application/zip",
        filename="fool-the-model-dataset.zip",
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )


routes: list[BaseRoute] = [
    Route("/api/admin/rounds/next", admin(next_round), methods=["POST"]),
    Route("/api/admin/trainer", admin(trainer), methods=["GET"]),
    Route("/api/admin/trainer/cancel", admin(cancel), methods=["POST"]),
    Route("/api/admin/models", admin(models), methods=["GET"]),
    Route("/api/admin/models/{version}/rollback", admin(rollback), methods=["POST"]),
    Route("/api/admin/export", admin(export), methods=["GET"]),
]
