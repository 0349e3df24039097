"""Real servers for the tests on loopback: free ports, waiting for a port or a game server's
/healthz, and PostgreSQL and Redis started in a temporary directory.

PostgreSQL and Redis come from Debian's packages (`make services` installs them; CI always runs
it). A test session starts each once; every test gets its own empty database
(`PostgresServer.new_database`) and Redis tests flush what they use. `restart()` is for the
fault tests: the server process goes away and comes back on the same port.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from waiting import wait_until


class ServiceUnavailable(RuntimeError):
    pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    def listening() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False

    try:
        wait_until(listening, timeout, f"nothing listens on 127.0.0.1:{port}", poll=0.05)
    except AssertionError as error:
        raise ServiceUnavailable(str(error)) from None


def wait_for_healthz(
    http: str, process: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 60.0
) -> None:
    """Until the game server at `http` answers /healthz; fails at once if its `process` exits,
    with the end of its `log`."""

    def tail() -> str:
        return "" if log is None else ":\n" + log.read_text(errors="replace")[-3000:]

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the server at {http} exited ({process.returncode}){tail()}")
        try:
            return httpx.get(f"{http}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout, f"the server at {http} did not start", poll=0.1)


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise ServiceUnavailable(
            "PostgreSQL is not installed: run `make services` (apt-get install postgresql)."
        )
    return Path(found[-1]).parent


class PostgresServer:
    """A throwaway cluster: trust auth on 127.0.0.1 only, superuser `postgres`."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ftm-postgres-"))
        self.data = self.root / "data"
        self._databases = 0
        # initdb refuses to run as root: run the server as Debian's `postgres` user then.
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                "--auth=trust", "--no-sync",
            )  # fmt: skip
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "log"), "-w", "start",
        )  # fmt: skip
        wait_for_port(self.port)
        return self

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        import psycopg

        self._databases += 1
        name = f"game_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceUnavailable(
                "Redis is not installed: run `make services` (apt-get install redis-server)."
            )
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        """Kill it (a crash, not a shutdown): subscribers lose their connections."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, down_seconds: float = 0.5) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def close(self) -> None:
        self.stop()
