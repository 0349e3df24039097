"""How the page handles protocol messages the server does not send yet (leaderboard rows,
claim_settled, validation tasks): the real websocket is relayed through Playwright, and the
test adds documented messages (docs/protocol.md) on the way."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from browser_helpers import Contexts, join, screenshot
from playwright.sync_api import Page, WebSocketRoute, expect

pytestmark = pytest.mark.browser

Message = dict[str, Any]


class Relay:
    """Relays the page's websocket to the real server; `answer` may reply to a page message
    itself (return True) instead of forwarding it; `push` sends the page a server message."""

    def __init__(self, page: Page, answer: Callable[[Message], Message | None] | None = None):
        self.page_side: WebSocketRoute | None = None
        self.received: list[Message] = []
        self.answer = answer
        page.route_web_socket("**/ws", self.route)

    def route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        self.page_side = ws

        def down(message: str | bytes) -> None:
            self.received.append(json.loads(message))
            ws.send(message)

        def up(message: str | bytes) -> None:
            reply = self.answer(json.loads(message)) if self.answer else None
            if reply is None:
                server.send(message)
            else:
                ws.send(json.dumps(reply))

        server.on_message(down)
        ws.on_message(up)

    def push(self, message: Message) -> None:
        assert self.page_side is not None, "the page has not connected"
        self.page_side.send(json.dumps(message))

    def player_id(self) -> int:
        return next(m["player"]["id"] for m in self.received if m["type"] == "welcome")


def row(rank: int, player_id: int, name: str, score: int) -> Message:
    return {"rank": rank, "player_id": player_id, "name": name, "score": score}


def test_the_leaderboard_pins_your_row_and_marks_rank_changes(contexts: Contexts) -> None:
    page = contexts.page("about:blank")
    relay = Relay(page)
    page.goto("/")
    join(page, "Ada")
    board = page.locator("#leaderboard")
    expect(board.locator(".board-status")).to_contain_text("No scores yet")  # the server's reply
    me = relay.player_id()
    grace, linus, alan = (
        row(1, 901, "Grace", 120),
        row(2, 902, "Linus", 90),
        row(3, 903, "Alan", 60),
    )
    relay.push(
        {
            "type": "leaderboard",
            "board": "round",
            "round_id": 1,
            "top": [grace, linus, alan],
            "you": {
                "rank": 7,
                "of": 52,
                "score": 40,
                "neighbours": [
                    row(6, 904, "Barbara", 44),
                    row(7, me, "Ada", 40),
                    row(8, 905, "Edsger", 38),
                ],
            },
        }
    )
    expect(board.locator(".board-rows").first.locator("li")).to_have_count(3)
    expect(board.locator(".board-you-line")).to_have_text("You are #7 of 52, with 40 points.")
    expect(board.locator(".board-neighbours .mine")).to_contain_text("Ada")

    relay.push(  # Linus overtakes Grace; Ada climbs into the top three
        {
            "type": "leaderboard",
            "board": "round",
            "round_id": 1,
            "top": [row(1, 902, "Linus", 130), row(2, 901, "Grace", 120), row(3, me, "Ada", 95)],
            "you": {"rank": 3, "of": 52, "score": 95, "neighbours": []},
        }
    )
    rows = board.locator(".board-rows").first.locator("li")
    expect(rows.nth(0)).to_contain_text("Linus")
    expect(rows.nth(0)).to_have_class("board-row rose")
    expect(rows.nth(1)).to_have_class("board-row fell")
    expect(rows.nth(2)).to_have_class("board-row mine")
    expect(board.locator(".board-neighbours")).to_have_count(0)
    expect(board.locator(".board-you-line")).to_contain_text("You are #3 of 52")

    relay.push(
        {"type": "leaderboard", "board": "all", "top": [row(1, 950, "Other", 1)], "you": None}
    )
    expect(rows.nth(0)).to_contain_text("Linus")  # a board the page is not showing is ignored
    screenshot(page, "leaderboard-rows-desktop")


def test_a_settled_claim_pops_up_with_its_points(contexts: Contexts) -> None:
    page = contexts.page("about:blank")
    relay = Relay(page)
    page.goto("/")
    join(page, "Ada")
    relay.push(
        {
            "type": "claim_settled",
            "attempt_id": 981,
            "outcome": "verified",
            "label": 7,
            "consensus_label": 7,
            "points": 12,
        }
    )
    expect(page.locator(".toast-good")).to_have_text(
        "Verified! Validators read your 7 too: it fooled the model. +12 points.×"
    )
    relay.push(
        {
            "type": "claim_settled",
            "attempt_id": 982,
            "outcome": "rejected_model_right",
            "label": 4,
            "consensus_label": 9,
            "points": -3,
        }
    )
    expect(
        page.locator(".toast-bad", has_text="agreed with the model on your 4. −3 points.").first
    ).to_be_visible()


def test_validating_replays_each_task_and_sends_the_answer(contexts: Contexts) -> None:
    tasks = iter(["t-1", "t-2"])
    votes: list[Message] = []

    def answer(message: Message) -> Message | None:
        if message["type"] == "task":
            task_id = next(tasks, None)
            if task_id is None:
                return {"type": "no_task", "id": message["id"]}
            stroke = [[40, 30], [60, 30], [48, 90]]
            return {
                "type": "task",
                "id": message["id"],
                "task_id": task_id,
                "drawing": {"strokes": [stroke]},
            }
        if message["type"] == "vote":
            votes.append(message)
            if message["task_id"] == "t-2":
                return {
                    "type": "error",
                    "id": message["id"],
                    "code": "task_settled",
                    "message": "That drawing was settled before your answer arrived.",
                }
            return {"type": "voted", "id": message["id"], "task_id": message["task_id"]}
        return None

    page = contexts.page("about:blank")
    Relay(page, answer)
    page.goto("/")
    join(page, "Grace")
    page.click("#tab-validate")
    expect(page.locator("#task-stage")).to_be_visible()
    expect(page.locator("#answers [data-answer='7']")).to_be_enabled()
    ink = page.evaluate(
        """() => { const c = document.getElementById('task-canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let dark = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) dark++;
                   return dark; }"""
    )
    assert ink > 1000, "the task's strokes were not drawn"
    screenshot(page, "validate-task-desktop")

    page.keyboard.press("7")
    expect(page.locator("#answers [data-answer='x']")).to_be_enabled()  # the next task, t-2
    page.click("#answers [data-answer='x']")
    expect(
        page.locator(".toast-error", has_text="settled before your answer").first
    ).to_be_visible()
    expect(page.locator("#task-empty")).to_contain_text("Nothing to check")  # moved on anyway
    assert [(v["task_id"], v["answer"]) for v in votes] == [("t-1", 7), ("t-2", "x")]
