"""The HTTP API as an OpenAPI 3.1 document, written by hand beside the routes it describes and
served at `GET /api/openapi.json`.

`PATHS` is the document's heart: one entry per route of `server/web/` (the websocket `/ws` is
docs/protocol.md's). tests/test_openapi.py checks it both ways against the app's route table and
against docs/http-api.md, so a new route is documented here, in the same commit, or the test
names it. The prose (what each field means) stays in docs/http-api.md.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from server.config import installed_version
from server.learning.data import EXPORT_FORMATS, OUTCOMES

JSON = "application/json"
OBJECT: dict[str, Any] = {"type": "object"}
ARRAY: dict[str, Any] = {"type": "array", "items": OBJECT}


def _json(description: str, schema: dict[str, Any] = OBJECT) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, {"$ref": "#/components/schemas/Error"})


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    parameter = {"name": name, "in": "path", "required": True, "description": description}
    return {**parameter, "schema": schema}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


ROW_ID = {"type": "integer", "minimum": 1}
ROUND_ID = _path("id", "the round's id", ROW_ID)
PLAYER_ID = _path("id", "the player's id", ROW_ID)
CLAIM_ID = _path("id", "the claim's attempt id", ROW_ID)
VERSION = _path("version", "a model version, `v2`", {"type": "string"})


def _operation(
    summary: str,
    ok: dict[str, Any],
    *,
    admin: bool = False,
    parameters: tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    status: str = "200",
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    responses = {status: ok, **{code: _error(why) for code, why in (errors or {}).items()}}
    if admin:
        responses["401"] = _error("no or a wrong admin token")
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["admin" if admin else "public"],
        "responses": responses,
    }
    if admin:
        operation["security"] = [{"adminToken": []}]
    if parameters:
        operation["parameters"] = list(parameters)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


PATHS: dict[str, dict[str, Any]] = {
    # --- public (server/web/public.py, models.py, this module) ---
    "/healthz": {
        "get": _operation(
            "readiness: the serving model and the current round",
            _json('`{"status": "ok", "model_version", "round"}`'),
            errors={"503": "not ready, or this process cannot serve the round's model"},
        )
    },
    "/metrics": {
        "get": _operation(
            "Prometheus metrics",
            {"description": "Prometheus text format", "content": {"text/plain": {}}},
        )
    },
    "/api/round": {"get": _operation("the current round", _json("the round"))},
    "/api/rounds": {"get": _operation("every round, newest first", _json("rounds", ARRAY))},
    "/api/leaderboard": {
        "get": _operation(
            "a leaderboard",
            _json('`{"board", "round_id", "size", "top", "you"}`'),
            parameters=(
                _query("board", "which board", {"enum": ["round", "all", "validators"]}),
                _query("limit", "rows", {"type": "integer", "minimum": 1, "maximum": 100}),
            ),
            errors={"400": "a bad `board` or `limit`"},
        )
    },
    "/api/hall-of-fame": {
        "get": _operation(
            "a round's verified fools, oldest first",
            _json("fools with the 28×28 PNG the model saw", ARRAY),
            parameters=(_query("round", "the round number (default: current)", ROW_ID),),
            errors={"400": "a bad `round`", "404": "no such round"},
        )
    },
    "/api/players/{id}/stats": {
        "get": _operation(
            "a player's scores, ranks and counts",
            _json("the player's statistics"),
            parameters=(PLAYER_ID,),
            errors={"404": "no such player"},
        )
    },
    "/api/models/metrics": {
        "get": _operation(
            "the 'harder to fool' chart: one row per model version",
            _json("rows, oldest first", ARRAY),
        )
    },
    "/api/models/leaderboard": {
        "get": _operation(
            "the models page: each model's accuracy per round",
            _json('`{"rounds", "models", "note"}`'),
        )
    },
    "/api/challenges": {
        "get": _operation(
            "the current round's prompts (challenges) with their bonus points",
            _json('`{"round_id", "challenges", "met"}`'),
        )
    },
    "/api/openapi.json": {"get": _operation("this document", _json("OpenAPI 3.1"))},
    # --- admin (server/web/admin.py) ---
    "/api/admin/rounds": {
        "get": _operation("rounds with counts", _json("rounds", ARRAY), admin=True),
        "post": _operation(
            "create the next round (scheduled), bound to a model",
            _json("the new round"),
            admin=True,
            status="201",
            body=_json_body(
                {
                    "type": "object",
                    "properties": {
                        "model_version": {"type": "string"},
                        "open": {"type": "boolean"},
                    },
                },
                required=False,
            ),
            errors={"400": "a bad body", "404": "no such model", "409": "an illegal transition"},
        ),
    },
    "/api/admin/rounds/{id}/open": {
        "post": _operation(
            "open a scheduled round",
            _json("the round"),
            admin=True,
            parameters=(ROUND_ID,),
            errors={"404": "no such round", "409": "an illegal transition"},
        )
    },
    "/api/admin/rounds/{id}/close": {
        "post": _operation(
            'close a round (open → closing, or at once with `{"state": "closed"}`)',
            _json("the round"),
            admin=True,
            parameters=(ROUND_ID,),
            body=_json_body(
                {"type": "object", "properties": {"state": {"enum": ["closing", "closed"]}}}, False
            ),
            errors={"404": "no such round", "409": "an illegal transition"},
        )
    },
    "/api/admin/rounds/{id}/challenges": {
        "get": _operation(
            "a round's prompts",
            _json('`{"round_id", "challenges", "met"}`'),
            admin=True,
            parameters=(ROUND_ID,),
            errors={"404": "no such round"},
        ),
        "post": _operation(
            "attach a prompt to a round that is not closed (pushed to every player)",
            _json("the prompt"),
            admin=True,
            status="201",
            parameters=(ROUND_ID,),
            body=_json_body(
                {
                    "type": "object",
                    "required": ["label"],
                    "properties": {
                        "label": {"type": "integer", "minimum": 0, "maximum": 9},
                        "model_label": {"type": "integer", "minimum": 0, "maximum": 9},
                        "bonus": {"type": "integer", "minimum": 1},
                    },
                }
            ),
            errors={"400": "a bad prompt, a closed round, or too many", "404": "no such round"},
        ),
    },
    "/api/admin/review": {
        "get": _operation("disputed claims, oldest first", _json("claims", ARRAY), admin=True)
    },
    "/api/admin/review/{id}": {
        "post": _operation(
            "decide a disputed or pending claim",
            _json("the drawer's `claim_settled` message"),
            admin=True,
            parameters=(CLAIM_ID,),
            body=_json_body(
                {
                    "type": "object",
                    "required": ["label"],
                    "properties": {
                        "label": {
                            "oneOf": [
                                {"type": "integer", "minimum": 0, "maximum": 9},
                                {"const": "x"},
                            ]
                        }
                    },
                }
            ),
            errors={"400": "`bad_label`", "404": "no such claim", "409": "`task_settled`"},
        )
    },
    "/api/admin/claims/{id}/audit": {
        "get": _operation(
            "a claim's every vote with its weight and why",
            _json("the audit"),
            admin=True,
            parameters=(CLAIM_ID,),
            errors={"404": "no such claim"},
        )
    },
    "/api/admin/players": {
        "get": _operation(
            "up to 100 players whose name contains `query`",
            _json("players", ARRAY),
            admin=True,
            parameters=(_query("query", "part of a name, any case", {"type": "string"}),),
        )
    },
    "/api/admin/players/{id}/{action}": {
        "post": _operation(
            "moderation: ban, quarantine or reinstate a player",
            _json('`{"player_id", "status", "votes_voided", "claims_disputed"}`'),
            admin=True,
            parameters=(
                PLAYER_ID,
                _path("action", "what to do", {"enum": ["ban", "quarantine", "reinstate"]}),
            ),
            errors={"404": "no such player or action"},
        )
    },
    "/api/admin/players/{id}/moderator": {
        method: _operation(
            f"{verb} a moderator (a trusted validator whose vote decides)",
            _json('`{"player_id", "moderator"}`'),
            admin=True,
            parameters=(PLAYER_ID,),
            errors={"404": "no such player"},
        )
        for method, verb in (("post", "mark"), ("delete", "unmark"))
    },
    "/api/admin/votes.jsonl": {
        "get": _operation(
            "every settled claim with its raw votes",
            {"description": "one JSON object a line", "content": {"application/jsonl": {}}},
            admin=True,
        )
    },
    # --- the learning loop (server/web/learning.py, models.py) ---
    "/api/admin/rounds/next": {
        "post": _operation(
            "launch the next round: retrain, gate, open",
            _json("the training job"),
            admin=True,
            status="202",
            errors={"409": "`trainer_busy`"},
        )
    },
    "/api/admin/trainer": {
        "get": _operation(
            "the queued or running training job, else the last one (`{}` before any)",
            _json("the job"),
            admin=True,
        )
    },
    "/api/admin/trainer/cancel": {
        "post": _operation(
            "cancel the queued or running job",
            _json("the job"),
            admin=True,
            errors={"409": "`no_job`"},
        )
    },
    "/api/admin/models": {
        "get": _operation("the model registry, oldest first", _json("models", ARRAY), admin=True)
    },
    "/api/admin/models/{version}/rollback": {
        "post": _operation(
            "serve a registered version again, in a new round",
            _json("the new round"),
            admin=True,
            parameters=(VERSION,),
            errors={"404": "no such version", "409": "`model_rejected` or `already_serving`"},
        )
    },
    "/api/admin/export": {
        "get": _operation(
            "the dataset as a zip (a Hugging Face dataset repository with its data card)",
            {"description": "a zip file", "content": {"application/zip": {}}},
            admin=True,
            parameters=(
                _query("format", "which", {"enum": [*EXPORT_FORMATS, "all"]}),
                _query("round", "a round number (repeatable)", {"type": "array", "items": ROW_ID}),
                _query(
                    "outcome",
                    "an outcome (repeatable; default: every settled one)",
                    {"type": "array", "items": {"enum": list(OUTCOMES)}},
                ),
            ),
            errors={"400": "a bad `format`, `round` or `outcome`"},
        )
    },
    "/api/admin/models/outside/{name}": {
        "post": _operation(
            "register an outside ONNX model for the models page",
            _json('`{"name", "sha256", "bytes", "registered"}`'),
            admin=True,
            status="201",
            parameters=(
                _path(
                    "name", "1–40 of a-z0-9_-", {"type": "string", "pattern": "^[a-z0-9_-]{1,40}$"}
                ),
            ),
            body={"required": True, "content": {"application/octet-stream": {}}},
            errors={"400": "`bad_model`: it breaks the model contract", "413": "`too_large`"},
        )
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Fool the Model",
        "version": installed_version(),
        "description": "The game's HTTP API (docs/http-api.md says what each field means). The "
        "websocket at `/ws` is docs/protocol.md's. Every error is "
        '`{"error": {"code": "…", "message": "…"}}`.',
        "license": {"name": "MIT", "identifier": "MIT"},
    },
    "tags": [
        {"name": "public", "description": "spectators, no login"},
        {"name": "admin", "description": "behind the admin token"},
    ],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "adminToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "`FTM_ADMIN_TOKEN`, or generated on first start into "
                "`DATA/admin_token`",
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            }
        },
    },
}


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(DOCUMENT)


routes: list[BaseRoute] = [Route("/api/openapi.json", openapi, methods=["GET"])]
