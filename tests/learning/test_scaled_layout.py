"""The scaled layout of compose.yaml, run on this machine without Docker: Debian's nginx with
deploy/nginx.conf in front of two game servers on one PostgreSQL and one Redis, and a trainer
worker. A player fools the model through nginx's websocket; a retrain launched through nginx is
trained by the worker and reaches the players of both servers.

nginx runs in the foreground with everything (pid, logs, temporary files) in a temporary
directory, so a system nginx is never touched; its configuration is deploy/nginx.conf with only
the addresses changed (compose's service names and port 80 → loopback ports)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from data_dirs import JOB_TIMEOUT, REPO, new_data_dir, trained_data_dir
from services import PostgresServer, RedisServer, free_port, wait_for_port
from websockets.asyncio.client import ClientConnection, connect
from worker_helpers import ADMIN_TOKEN, Child, Server, seed_verified, start_worker

from server.mnist import Mnist

# Two servers start, a trainer trains: more than the default 300 s on two busy cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SEVEN = {"strokes": [[[10, 10], [90, 10], [40, 95]]]}


def nginx_config(root: Path, port: int, upstreams: list[int]) -> Path:
    """deploy/nginx.conf in a minimal main configuration, its addresses made local."""
    site = (REPO / "deploy" / "nginx.conf").read_text()
    replacements = {
        "server server-a:8000": f"server 127.0.0.1:{upstreams[0]}",
        "server server-b:8000": f"server 127.0.0.1:{upstreams[1]}",
        "listen 80;": f"listen 127.0.0.1:{port};",
    }
    for old, new in replacements.items():
        assert old in site, f"deploy/nginx.conf no longer says {old!r}"
        site = site.replace(old, new)
    (root / "site.conf").write_text(site)
    temp = {name: root / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    main = root / "nginx.conf"
    main.write_text(f"""
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{}}
http {{
    access_log {root}/access.log;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {root}/site.conf;
}}
""")
    return main


@pytest.fixture
def nginx_for(tmp_path: Path) -> Iterator[Any]:
    """`nginx_for(upstream ports)`: nginx in front of them; its port. Stopped at the end."""
    if not os.path.exists(NGINX):
        if os.environ.get("CI"):
            raise AssertionError("nginx is not installed: `make services` installs it")
        pytest.skip("nginx is not installed: run `make services` (apt-get install nginx)")
    started: list[subprocess.Popen[bytes]] = []

    def start(upstreams: list[int]) -> int:
        root = tmp_path / "nginx"
        root.mkdir()
        port = free_port()
        config = nginx_config(root, port, upstreams)
        command = [NGINX, "-p", str(root), "-e", str(root / "error.log"), "-c", str(config)]
        with (root / "stderr.log").open("wb") as log:
            started.append(subprocess.Popen(command, stdout=log, stderr=log))
        wait_for_port(port)
        return port

    yield start
    for process in started:
        process.terminate()
        process.wait(30)


class Player:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.pushes: list[dict[str, Any]] = []

    async def request(self, message: dict[str, Any], kind: str) -> dict[str, Any]:
        await self.connection.send(json.dumps(message))
        return await self.next(kind)

    async def next(self, kind: str, where: Any = lambda m: True) -> dict[str, Any]:
        """The next message of `kind` matching `where`; others are kept in `pushes`."""
        for message in self.pushes:
            if message["type"] == kind and where(message):
                self.pushes.remove(message)
                return message
        while True:
            message = json.loads(await self.connection.recv())
            assert message["type"] != "error", message
            if message["type"] == kind and where(message):
                return message
            self.pushes.append(message)


def connections(server: Server) -> int:
    return int(httpx.get(f"{server.http}/healthz").json()["connections"])


async def test_nginx_carries_the_game_over_two_servers_and_a_trainer(
    tmp_path: Path,
    trained_model: Path,
    mnist: Mnist,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    nginx_for: Any,
    children: list[Child],
) -> None:
    database_url = postgres_server.new_database()
    data_dir = trained_data_dir(tmp_path / "game-data", trained_model)  # shared, as in compose
    env = {"FTM_REDIS_URL": redis_server.url}
    servers = [Server(data_dir, database_url, **env) for _ in range(2)]
    children.extend(servers)
    port = nginx_for([server.port for server in servers])
    address = f"127.0.0.1:{port}"
    assert httpx.get(f"http://{address}/healthz").json()["status"] == "ok"

    # One player on each server, both through nginx: least connections spreads them (a client
    # that lands beside an earlier one stays open, and another one is tried).
    sockets: list[ClientConnection] = []
    players: dict[int, Player] = {}  # by the index of the server it landed on
    for attempt in range(6):
        before = [connections(server) for server in servers]
        sockets.append(await connect(f"ws://{address}/ws"))
        player = Player(sockets[-1])
        welcome = await player.request({"type": "hello", "v": 1, "name": f"P{attempt}"}, "welcome")
        assert welcome["round"]["number"] == 1
        after = [connections(server) for server in servers]
        players.setdefault(next(i for i in (0, 1) if after[i] > before[i]), player)
        if len(players) == 2:
            break
    assert len(players) == 2, "nginx sent every websocket to one server"

    # A claim through nginx's websocket: the model is fooled, the claim waits for votes.
    guess = await players[1].request({"type": "predict", "id": "p", "drawing": SEVEN}, "prediction")
    claim = {"type": "submit", "id": "s", "drawing": SEVEN, "label": (guess["label"] + 1) % 10}
    submitted = await players[1].request(claim, "submitted")
    assert submitted["outcome"] == "pending", submitted

    # A retrain launched through nginx, trained by the worker, reaches both servers' players.
    seed_verified(database_url, mnist, 20)
    admin = httpx.Client(
        base_url=f"http://{address}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    launched = admin.post("/api/admin/rounds/next")
    assert launched.status_code == 202, launched.text
    worker_dir = new_data_dir(tmp_path / "trainer-data", mnist=True)  # its own, as in compose
    children.append(start_worker(worker_dir, database_url, "trainer", "--once", **env))
    for player in players.values():
        told = await asyncio.wait_for(
            player.next("round", lambda m: m["round"]["number"] == 2), JOB_TIMEOUT
        )
        assert told["round"]["model_version"] == "v2"
    for server in servers:
        assert httpx.get(f"{server.http}/healthz").json()["model_version"] == "v2"
    job = admin.get("/api/admin/trainer").json()
    assert (job["state"], job["outcome"]) == ("succeeded", "passed"), job
    admin.close()
    for socket in sockets:
        await socket.close()
