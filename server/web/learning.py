"""HTTP routes of the learning loop (docs/http-api.md): the trainer, the model registry, the
dataset export (admin, behind the token) and the chart data (public)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from server.learning.data import EXPORT_FORMATS, OUTCOMES, export_to
from server.learning.export import zip_export
from server.learning.loop import Learning, NoJobRunning, TrainerBusy
from server.web.admin import AdminApi, api_error


class LearningApi:
    """Routes exist from the start; `learning` is set once the game runs."""

    def __init__(self, admin: AdminApi) -> None:
        self.admin = admin
        self.learning: Learning | None = None

    def routes(self) -> list[Route]:
        g = self.admin._guarded
        return [
            Route("/api/models/metrics", self.metrics, methods=["GET"]),
            Route("/api/admin/rounds/next", g(self.next_round), methods=["POST"]),
            Route("/api/admin/trainer", g(self.trainer), methods=["GET"]),
            Route("/api/admin/trainer/cancel", g(self.cancel), methods=["POST"]),
            Route("/api/admin/models", g(self.models), methods=["GET"]),
            Route("/api/admin/models/{version}/rollback", g(self.rollback), methods=["POST"]),
            Route("/api/admin/export", g(self.export), methods=["GET"]),
        ]

    @property
    def _learning(self) -> Learning:
        assert self.learning is not None  # the admin guard answers 503 until the game runs
        return self.learning

    async def metrics(self, request: Request) -> Response:
        if self.learning is None:
            return api_error(503, "starting", "The server is starting; try again shortly.")
        return JSONResponse(await self.learning.metrics())

    async def next_round(self, request: Request) -> Response:
        """Train now; the next round opens with the candidate once it passes the gate."""
        try:
            job = await self._learning.launch("admin", open_next=True)
        except TrainerBusy as error:
            return api_error(409, "trainer_busy", str(error))
        except OSError as error:  # the job is recorded as failed with the reason
            return api_error(500, "training_data", f"Cannot write the training data: {error}")
        return JSONResponse(job.public(), status_code=202)

    async def trainer(self, request: Request) -> Response:
        job = await self._learning.status()
        return JSONResponse(job.public() if job else {})

    async def cancel(self, request: Request) -> Response:
        try:
            job = await self._learning.cancel()
        except NoJobRunning as error:
            return api_error(409, "no_job", str(error))
        return JSONResponse(job.public())

    async def models(self, request: Request) -> Response:
        models = await asyncio.to_thread(self._learning.model_store.models)
        return JSONResponse([m.public() for m in models])

    async def rollback(self, request: Request) -> Response:
        """Serve a registered, accepted version again: a new round opens bound to it."""
        learning = self._learning
        version = request.path_params["version"]
        model = await asyncio.to_thread(learning.model_store.model, version)
        if model is None:
            raise LookupError(f"There is no model {version!r} in the registry.")
        if not model.accepted:
            return api_error(
                409,
                "model_rejected",
                f"{version} failed the gate and may not serve: "
                f"{model.gate.get('reason', 'no reason recorded')}",
            )
        if model.status == "serving":
            return api_error(409, "already_serving", f"{version} is already serving.")
        opened = await learning.game.create_round(version, open_now=True)
        return JSONResponse(opened.public())

    async def export(self, request: Request) -> Response:
        """`?format=imagefolder|ndjson|numpy|all&round=N&outcome=verified` → a zip."""
        query = request.query_params
        formats = query.get("format", "all")
        chosen = list(EXPORT_FORMATS) if formats == "all" else formats.split(",")
        if not set(chosen) <= set(EXPORT_FORMATS):
            return api_error(
                400, "bad_request", f"`format` is all or one of {', '.join(EXPORT_FORMATS)}."
            )
        rounds = [int(r) for r in query.getlist("round") if r.isdigit()]
        if len(rounds) != len(query.getlist("round")):
            return api_error(400, "bad_request", "`round` is a round number.")
        outcomes = query.getlist("outcome")
        if not set(outcomes) <= set(OUTCOMES):
            return api_error(400, "bad_request", f"`outcome` is one of {', '.join(OUTCOMES)}.")
        layout = self._learning.layout
        work = Path(tempfile.mkdtemp(prefix="export-", dir=layout.root))

        def build() -> Path:
            export_to(layout, work / "dataset", chosen, rounds or None, outcomes or None)
            return zip_export(work / "dataset", work / "dataset.zip")

        try:
            archive = await asyncio.to_thread(build)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return FileResponse(
            archive,
            media_type="application/zip",
            filename="fool-the-model-dataset.zip",
            background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
        )
