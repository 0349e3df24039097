"""The OpenAPI document (server/web/openapi.py) is the API's route table, kept true by checking
it both ways: every HTTP route the app serves is documented, every documented route is served,
docs/http-api.md lists the same routes, and the document is valid OpenAPI 3.1 served as is."""

from __future__ import annotations

import re
from pathlib import Path

from data_dirs import REPO
from openapi_spec_validator import validate
from starlette.routing import Route
from starlette.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.web.openapi import DOCUMENT

METHODS = {"get", "put", "post", "delete", "patch"}
CONVERTER = re.compile(r":\w+}")  # `{id:row_id}` in a route is `{id}` in the document
WHERE = "add it to PATHS in server/web/openapi.py and a row to docs/http-api.md"


def served(tmp_path: Path) -> set[str]:
    """'METHOD /path' of every HTTP route of the app (HEAD comes with GET; the websocket and
    the static pages are not HTTP API routes), path parameters without their converters."""
    app = create_app(Settings(data_dir=tmp_path))
    return {
        f"{method} {CONVERTER.sub('}', route.path)}"
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }


def documented() -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, operations in DOCUMENT["paths"].items()
        for method in operations
        if method in METHODS
    }


def listed_in_the_docs() -> set[str]:
    """The routes in the first column of docs/http-api.md's tables (query strings dropped)."""
    text = (REPO / "docs" / "http-api.md").read_text(encoding="utf-8")
    cells = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| `")]
    return {
        f"{method} {path}"
        for cell in cells
        for method, path in re.findall(r"`(GET|PUT|POST|DELETE|PATCH) (/[^`?\s]*)", cell)
    }


def without_parameter_names(routes: set[str]) -> set[str]:
    return {re.sub(r"{\w+}", "{}", route) for route in routes}


def test_every_route_is_documented(tmp_path: Path) -> None:
    missing = sorted(served(tmp_path) - documented())
    assert missing == [], f"served but not in the OpenAPI document ({WHERE}): {missing}"


def test_every_documented_route_is_served(tmp_path: Path) -> None:
    stale = sorted(documented() - served(tmp_path))
    assert stale == [], f"in server/web/openapi.py's PATHS but served by no route: {stale}"


def test_docs_http_api_lists_the_same_routes() -> None:
    document = without_parameter_names(documented())
    docs = without_parameter_names(listed_in_the_docs())
    assert sorted(document - docs) == [], "in the OpenAPI document but not in docs/http-api.md"
    assert sorted(docs - document) == [], "in docs/http-api.md but not in the OpenAPI document"


def test_the_document_is_valid_openapi() -> None:
    validate(DOCUMENT)  # raises, naming the bad part
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), f"{method} {path}"
            assert operation["summary"] and operation["responses"], f"{method} {path}"


def test_the_document_is_served(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, allowed_hosts=("testserver",)))
    response = TestClient(app).get("/api/openapi.json")  # no lifespan: needs no game
    assert response.status_code == 200
    assert response.json() == DOCUMENT
