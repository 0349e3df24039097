"""The Dockerfile and compose.yaml, checked by reading them (Docker cannot run here): the image
installs what `make install` installs, and the compose layout wires two servers behind a
websocket-capable proxy to one PostgreSQL, one Redis and a trainer worker."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def extras(text: str) -> set[str]:
    """The extras of every `pip install -e '.[a,b]'` in `text`."""
    found = re.findall(r"pip install[^\n]*-e '\.\[([a-z,]+)\]'", text)
    assert found, "no `pip install -e '.[…]'` found"
    return {name for group in found for name in group.split(",")}


def test_the_image_installs_what_make_installs_but_the_dev_tools() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert extras(dockerfile) == extras(makefile) - {"dev"}
    assert "--upgrade pip" in dockerfile and "--upgrade pip" in makefile
    # torch is installed first (from the CPU-only index) at exactly the version pyproject pins.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = {
        spec.split("==")[0]: spec
        for spec in pyproject["project"]["optional-dependencies"]["train"]
        if "==" in spec
    }
    for package in ("torch", "torchvision"):
        assert pins[package] in dockerfile
    assert re.search(r"^USER ftm$", dockerfile, re.M) and "/healthz" in dockerfile


def test_the_compose_layout() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {
        "proxy",
        "init",
        "server-a",
        "server-b",
        "trainer",
        "postgres",
        "redis",
        "prometheus",
        "grafana",
    }
    for name in ("server-a", "server-b", "trainer"):
        env = services[name]["environment"]
        assert env["FTM_DATABASE_URL"].startswith("postgresql://")
        assert env["FTM_DATABASE_URL"].endswith("@postgres:5432/ftm")
        assert env["FTM_REDIS_URL"] == "redis://redis:6379/0"
        assert env["FTM_TRAINER"] == "external"
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy"
        assert deps["init"]["condition"] == "service_completed_successfully"
    assert services["server-a"]["command"] == ["fool-the-model", "serve"]
    assert "fool-the-model trainer" in " ".join(services["trainer"]["command"])
    # The servers share one data volume; the trainer has its own (as on another machine).
    volumes = {name: services[name]["volumes"] for name in ("server-a", "server-b", "trainer")}
    assert volumes["server-a"] == volumes["server-b"] == ["game-data:/data"]
    assert volumes["trainer"] == ["trainer-data:/data"]
    assert set(compose["volumes"]) >= {"game-data", "trainer-data", "postgres-data"}
    for name in ("proxy", "postgres", "redis", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    proxy = services["proxy"]
    assert {d: c["condition"] for d, c in proxy["depends_on"].items()} == {
        "server-a": "service_healthy",
        "server-b": "service_healthy",
    }
    [config] = [v.split(":")[0] for v in proxy["volumes"]]
    nginx = (REPO / config).read_text()
    assert "server server-a:8000" in nginx and "server server-b:8000" in nginx
    assert "proxy_set_header Upgrade $http_upgrade" in nginx
    assert "proxy_set_header Connection $connection_upgrade" in nginx
    # The servers compare the websocket's Origin with Host: the port must come through.
    assert "proxy_set_header Host $http_host" in nginx


def test_prometheus_scrapes_each_server_and_grafana_loads_the_dashboard() -> None:
    yaml = pytest.importorskip("yaml")
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    mounts = {
        name: dict(v.split(":")[:2] for v in services[name]["volumes"] if v.startswith("./"))
        for name in ("prometheus", "grafana")
    }
    config = "deploy/prometheus/prometheus.yml"
    assert mounts["prometheus"][f"./{config}"] == "/etc/prometheus/prometheus.yml"
    scrape = yaml.safe_load((REPO / config).read_text())
    [job] = scrape["scrape_configs"]
    [targets] = [c["targets"] for c in job["static_configs"]]
    assert targets == ["server-a:8000", "server-b:8000"]
    # The servers answer to the names Prometheus uses for them.
    hosts = services["server-a"]["environment"]["FTM_ALLOWED_HOSTS"].split(",")
    assert {t.split(":")[0] for t in targets} <= set(hosts)
    dashboard = mounts["grafana"]["./deploy/grafana/fool-the-model.json"]
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/fool-the-model.yml").read_text()
    )
    assert dashboard.startswith(provider["providers"][0]["options"]["path"] + "/")
    assert mounts["grafana"]["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
