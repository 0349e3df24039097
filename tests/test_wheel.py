"""The package as a user installs it: `pip wheel --no-deps .` builds a wheel that carries the
browser client, the default rules, the license and the metadata, and a server installed from it
(not this checkout) serves every page.

Economical: one wheel, built from a copy of the checkout's project files; a fresh venv without
pip gets only the wheel, and finds the dependencies in this interpreter's site-packages through
a .pth file (a plain path: the editable install's finder there is not loaded, so `server` can
only come from the wheel)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator
from email.parser import BytesParser
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from data_dirs import REPO
from services import free_port, wait_for_healthz

pytestmark = pytest.mark.slow

PROJECT_FILES = ["pyproject.toml", "README.md", "LICENSE", "server", "game_rules", "static"]
PAGES = ["/", "/leaderboard.html", "/admin.html", "/models.html", "/style.css", "/js/main.js"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel --no-deps .` builds from the project files (symlinks kept)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in PROJECT_FILES:
        path = REPO / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(path, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", root / "dist", source], check=True)
    return next((root / "dist").glob("fool_the_model-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Path:
    """A fresh venv with the wheel installed, its dependencies borrowed from this interpreter."""
    venv = wheel.parent.parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(purelib) / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "--python", python]
    subprocess.run([*pip, "install", "--no-deps", "--no-index", wheel], check=True)
    return venv


def installed_env() -> dict[str, str]:
    """This environment without anything that points at the checkout."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("FTM_")}


def test_the_wheel_carries_pages_rules_license_and_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta_file = next(name for name in names if name.endswith(".dist-info/METADATA"))
        meta = BytesParser().parsebytes(archive.read(meta_file))
    pages = {p.relative_to(REPO).as_posix() for p in (REPO / "static").rglob("*") if p.is_file()}
    assert {f"server/{page}" for page in pages} <= names
    assert "game_rules/defaults.toml" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert (meta["Name"], meta["Version"]) == ("fool-the-model", metadata.version("fool-the-model"))
    assert meta["License-Expression"] == "MIT"
    assert meta["Author"] == "Fool the Model contributors"
    assert "Programming Language :: Python :: 3.11" in meta.get_all("Classifier")


def run_installed(*command: Path | str) -> str:
    """What an installed command prints, run away from the checkout (so nothing imports from it)."""
    with tempfile.TemporaryDirectory() as elsewhere:
        return subprocess.run(
            command, cwd=elsewhere, env=installed_env(), check=True, capture_output=True, text=True
        ).stdout


def test_the_installed_package_is_the_wheel(venv: Path) -> None:
    found = run_installed(venv / "bin" / "python", "-c", "import server; print(server.__file__)")
    assert found.startswith(str(venv)), found
    version = run_installed(venv / "bin" / "fool-the-model", "--version")
    assert version == f"fool-the-model {metadata.version('fool-the-model')}\n"


@pytest.fixture
def installed_server(venv: Path, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """`fool-the-model serve` of the installed package, run outside the checkout."""
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [venv / "bin" / "fool-the-model", "--data-dir", data_dir, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=installed_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    http = f"http://127.0.0.1:{port}"
    try:
        wait_for_healthz(http, process, log)
        assert f"Fool the Model at {http}  (data: {data_dir})" in log.read_text()  # once bound
        yield http
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_installed_server_serves_every_page(installed_server: str) -> None:
    for page in PAGES:
        response = httpx.get(installed_server + page, timeout=10)
        file = REPO / "static" / (page.lstrip("/") or "index.html")
        assert (page, response.status_code) == (page, 200)
        assert response.content == file.read_bytes(), page
    schema = httpx.get(f"{installed_server}/api/openapi.json", timeout=10)
    assert schema.status_code == 200 and schema.json()["openapi"] == "3.1.0"
