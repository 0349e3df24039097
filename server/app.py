"""The serving process: a Starlette app (HTTP + websocket) run by uvicorn.

`create_app(settings)` is the composition root: the routes come from `server/web/` (one module
per audience: `websocket`, `public`, `admin`, `learning`) and the browser client is mounted at
`/`; its lifespan opens storage (applying migrations), loads the current round's model and starts
the hub and the learning loop. The configuration is read once (server/config.py) and passed in.
`serve_command` is `fool-the-model serve`. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from server.config import Settings, load_rules
from server.learning.loop import Learning, LearningSettings
from server.logs import configure_logging
from server.play.game import Game, StartupError
from server.prometheus import Metrics
from server.realtime import wire
from server.realtime.hub import Hub
from server.realtime.limits import ConnectionCaps, Limits
from server.realtime.pubsub import open_broker
from server.storage import open_repository
from server.web import admin, learning, models, openapi, public, websocket
from server.web.auth import load_admin_token
from server.web.errors import json_http_error
from server.web.game_metrics import GameMetrics
from server.web.http_timeouts import HeaderTimeoutProtocol
from server.web.running import attach
from server.web.security import SecurityHeaders, allowed_hosts, host_allowed

log = logging.getLogger(__name__)

# Collections of the middle generation between two full collections (CPython's default: 10).
FULL_COLLECTION_EVERY = 100

# The browser client: the checkout's top-level static/, reached through the `server/static`
# symlink, which is also how the wheel carries it inside the package (pyproject.toml).
STATIC_DIR = Path(__file__).resolve().parent / "static"


class Server:
    """Everything one app owns, created at startup and released at shutdown; the routes reach
    it per request (`server/web/running.py`)."""

    def __init__(self, settings: Settings, limits: Limits) -> None:
        self.settings = settings
        self.layout = settings.layout
        self.limits = limits
        self.caps = ConnectionCaps(limits)
        self.allowed_origins = list(settings.allowed_origins)
        self.metrics = Metrics()
        self.hub = Hub(self.metrics)
        self.game_metrics = GameMetrics(self.metrics)
        self.game: Game | None = None
        self.learning: Learning | None = None
        self.admin_token: str | None = None
        self.startup_error: str | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            rules = load_rules(self.layout)
            learning_settings = LearningSettings.from_config(rules, self.settings.trainer)
            broker = open_broker(self.metrics, self.settings.redis_url)  # or in-process
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
        self.game = self.game_metrics.game = game
        self.admin_token = load_admin_token(self.layout, self.settings.admin_token)
        learning = Learning(game, learning_settings)
        await learning.start()
        self.learning = learning
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


def create_app(settings: Settings, limits: Limits | None = None) -> Starlette:
    """The app. It answers to the local host names and `settings.allowed_hosts`
    (server/web/security.py); the websocket to the page's own origin and
    `settings.allowed_origins`."""
    server = Server(settings, limits or Limits())
    routes: list[BaseRoute] = [
        *public.routes,
        *admin.routes,
        *learning.routes,
        *models.routes,
        *openapi.routes,
        Mount("/", StaticFiles(directory=STATIC_DIR, html=True)),
    ]
    middleware = [
        Middleware(SecurityHeaders),  # outermost: on every response, refusals included
        Middleware(
            TrustedHostMiddleware,
            allowed_hosts=allowed_hosts(settings.allowed_hosts),
            www_redirect=False,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: json_http_error},
        lifespan=server.lifespan,
    )
    attach(app, server)
    return app


def uvicorn_config(app: Starlette, host: str, port: int, limits: Limits) -> uvicorn.Config:
    """How uvicorn serves the app: timeouts, no access log, and the websocket `/ws` on our own
    wire (server/realtime/wire.py) straight to the game's sessions, outside ASGI."""
    server: Server = app.state.server
    hosts = allowed_hosts(server.settings.allowed_hosts)
    ws = wire.protocol_factory(
        functools.partial(websocket.open_session, server),
        functools.partial(host_allowed, allowed=hosts),
        max_message_bytes=limits.max_message_bytes,
        send_buffer_bytes=limits.send_buffer_bytes,
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HeaderTimeoutProtocol,  # headers within a deadline (slow or silent clients)
        timeout_keep_alive=5,  # seconds an idle keep-alive connection is kept
        ws=ws,  # type: ignore[arg-type]
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host`:`port`; OSError (the port is taken, no such address) if not."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def serve_command(settings: Settings) -> int:
    """`fool-the-model serve`: `settings` carries `--host`/`--port` over `$FTM_HOST`/`$FTM_PORT`."""
    try:
        sock = listen(settings.host, settings.port)
    except OSError as error:
        print(
            f"error: cannot listen on {settings.host}:{settings.port}: "
            f"{error.strerror or error}; choose another --port or --host (FTM_PORT, FTM_HOST)",
            file=sys.stderr,
        )
        return 1
    configure_logging()
    # The event loop thread is busy under load; the database threads each need the GIL back
    # briefly to hand over a result. At the default 5 ms switch interval every hand-over waits up
    # to 5 ms, which adds up to tens of ms per submission.
    sys.setswitchinterval(0.0005)
    limits = Limits()
    app = create_app(settings, limits)
    # What is imported and built by now lives as long as the process. Frozen out of the garbage
    # collector's sight, it is no longer walked by every full collection. Full collections stop
    # the event loop for as long as they walk every object alive (60–80 ms with 600 players
    # on a busy box: that pause was the p99 of the live guesses), so they run a tenth as often
    # (FULL_COLLECTION_EVERY); what young objects cost, the first two generations, is unchanged.
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    server = uvicorn.Server(uvicorn_config(app, settings.host, settings.port, limits))
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(
        f"Fool the Model at http://{host}:{settings.port}  (data: {settings.data_dir})",
        file=sys.stderr,
    )
    with sock, contextlib.suppress(SystemExit):  # uvicorn exits this way when the lifespan fails
        server.run(sockets=[sock])
    startup_error = app.state.server.startup_error
    if startup_error:
        print(f"error: {startup_error}", file=sys.stderr)
        return 1
    return 0 if server.started else 1
