"""The serving process: a Starlette app (HTTP + websocket) run by uvicorn.

`create_app(data_dir)` builds the app; its lifespan opens storage (applying migrations), loads
the current round's model and starts the hub. `serve_command` is `fool-the-model serve`.
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from server.config import DataLayout
from server.learning.loop import Learning, LearningSettings
from server.logs import configure_logging
from server.play.game import Game, StartupError
from server.prometheus import Metrics
from server.realtime.hub import Hub
from server.realtime.limits import Limits
from server.realtime.pubsub import open_broker
from server.storage import open_repository
from server.validation.service import load_rules
from server.web.admin import AdminApi, load_admin_token
from server.web.consensus import public_routes
from server.web.learning import LearningApi
from server.web.models import ModelsApi
from server.web.websocket import POLICY_VIOLATION, Session

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
HOST_ENV, PORT_ENV, ORIGINS_ENV = "FTM_HOST", "FTM_PORT", "FTM_ALLOWED_ORIGINS"


def origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str]) -> bool:
    """Browsers always send Origin: it must be this host or a configured one. Non-browser
    clients send none and are let in (they could forge it anyway; Origin stops other *sites*)."""
    if origin is None:
        return True
    if origin in allowed:
        return True
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


class Server:
    """Everything one app owns, created at startup and released at shutdown."""

    def __init__(self, data_dir: Path, limits: Limits, allowed_origins: Sequence[str]) -> None:
        self.layout = DataLayout(data_dir)
        self.limits = limits
        self.allowed_origins = list(allowed_origins)
        self.metrics = Metrics()
        self.hub = Hub(self.metrics)
        self.game: Game | None = None
        self.admin = AdminApi()
        self.learning_api = LearningApi(self.admin)
        self.startup_error: str | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            learning_settings = LearningSettings.from_env(load_rules(self.layout))
            broker = open_broker(self.metrics)  # $FTM_REDIS_URL, else in-process
        except ValueError as error:  # bad rules or a bad $FTM_REDIS_URL
            self.startup_error = str(error)
            raise
        repo = await open_repository(self.layout.database_url)
        game = Game(self.layout, repo, self.hub, self.metrics, broker)
        try:
            await game.start()
        except StartupError as error:
            self.startup_error = str(error)
            await repo.close()
            raise
        # After the game subscribed: the first subscribe's resync covers what was published
        # between loading the round and listening. Redis being down is no reason to refuse to
        # start: the listener keeps reconnecting and the database check covers the gap.
        await broker.start()
        self.game = game
        self.admin.attach(game, load_admin_token(self.layout))
        learning = Learning(game, learning_settings)
        await learning.start()
        self.learning_api.learning = learning
        log.info(
            "serving",
            extra={
                "round": game.round and game.round.number,
                "model_version": game.serving_version,
            },
        )
        try:
            yield
        finally:
            await learning.stop()
            await broker.stop()
            await game.stop()
            await repo.close()

    async def websocket(self, websocket: WebSocket) -> None:
        if not origin_allowed(
            websocket.headers.get("origin"), websocket.headers.get("host"), self.allowed_origins
        ):
            await websocket.accept()
            self.metrics.disconnects.labels(str(POLICY_VIOLATION)).inc()
            await websocket.close(POLICY_VIOLATION, "origin not allowed")
            return
        assert self.game is not None
        await Session(websocket, self.game, self.hub, self.limits, self.metrics).run()

    async def healthz(self, request: Request) -> Response:
        if self.game is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await self.game.repo.ping()
            current = await self.game.current_round()
        except Exception as error:
            return JSONResponse({"status": "storage_error", "error": str(error)}, status_code=503)
        if self.game.follow_error is not None:
            # This process cannot serve the current round (its model is missing here).
            return JSONResponse(
                {
                    "status": "round_model_missing",
                    "error": self.game.follow_error,
                    "model_version": self.game.serving_version,
                },
                status_code=503,
            )
        return JSONResponse(
            {
                "status": "ok",
                "model_version": self.game.serving_version,
                "round": current.public() if current else None,
                "connections": len(self.hub.connections),
            }
        )

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def current_round(self, request: Request) -> Response:
        assert self.game is not None
        current = await self.game.current_round()
        return JSONResponse(current.public() if current else None)

    async def rounds(self, request: Request) -> Response:
        assert self.game is not None
        return JSONResponse([r.public() for r in await self.game.repo.rounds()])


def create_app(
    data_dir: Path,
    limits: Limits | None = None,
    allowed_origins: Sequence[str] = (),
) -> Starlette:
    server = Server(data_dir, limits or Limits(), allowed_origins)
    routes: list[Route | WebSocketRoute | Mount] = [
        WebSocketRoute("/ws", server.websocket),
        Route("/healthz", server.healthz),
        Route("/metrics", server.metrics_endpoint),
        Route("/api/round", server.current_round),
        Route("/api/rounds", server.rounds),
        *public_routes(lambda: server.game),
        *server.admin.routes(),
        *server.learning_api.routes(),
        *ModelsApi(server.admin, server.layout).routes(),
        Mount("/", StaticFiles(directory=STATIC_DIR, html=True, check_dir=False)),
    ]
    app = Starlette(routes=routes, lifespan=server.lifespan)
    app.state.server = server
    return app


def serve_command(args: argparse.Namespace, data_dir: Path) -> int:
    host = args.host or os.environ.get(HOST_ENV) or "127.0.0.1"
    port = args.port if args.port is not None else int(os.environ.get(PORT_ENV) or 8000)
    origins = [o.strip() for o in os.environ.get(ORIGINS_ENV, "").split(",") if o.strip()]
    configure_logging()
    # The event loop thread is busy under load; the database threads each need the GIL back
    # briefly to hand over a result. At the default 5 ms switch interval every hand-over waits up
    # to 5 ms, which adds up to tens of ms per submission.
    sys.setswitchinterval(0.0005)
    limits = Limits()
    app = create_app(data_dir, limits, origins)
    # What is imported and built by now lives as long as the process. Frozen out of the garbage
    # collector's sight, it is no longer walked by every full collection (~20 ms each here, which
    # went straight into the tail of the live guesses' latency).
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws_max_size=limits.max_message_bytes,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        ws_per_message_deflate=False,  # frames are small; compression would cost CPU per guess
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    print(f"Fool the Model at http://{host}:{port}  (data: {data_dir})", file=sys.stderr)
    with contextlib.suppress(SystemExit):  # uvicorn exits this way when the lifespan fails
        server.run()
    startup_error = app.state.server.startup_error
    if startup_error:
        print(f"error: {startup_error}", file=sys.stderr)
        return 1
    return 0 if server.started else 1
