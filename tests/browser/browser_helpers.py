"""What a person does on the pages, as functions the browser tests share."""

from __future__ import annotations

import itertools
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from live_server import ADMIN_TOKEN
from playwright.sync_api import Browser, BrowserContext, Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 360, "height": 740}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# A small game (the `lenient_rules` fixture): no gold warm-up, and the admin marks the one
# validator a moderator, whose vote decides a claim (README, "Trust": K established validators
# never come from two new accounts).
LENIENT_RULES = """
[reliability]
min_reliability = 0.5

[consensus]
min_trusted_voters = 1
dissent_extra_voters = 0
verify_threshold = 0.5
contest_voters = 0

[gold]
rate = 0.0
warmup_answers = 0

[leaderboard]
push_interval_seconds = 0.1
"""

# Shapes as fractions of the pad, one list of points per stroke.
SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]
ONE = [[(0.5, 0.15), (0.52, 0.85)]]
ZERO = [[(0.5, 0.15), (0.75, 0.5), (0.5, 0.85), (0.25, 0.5), (0.5, 0.15)]]


def join(page: Page, name: str) -> None:
    """Fill in the join dialog and wait until the game says we are online."""
    page.fill("#join-name", name)
    page.click("#join button[type=submit]")
    expect(page.locator("#connection")).to_have_text("online")
    expect(page.locator("#player-name")).to_have_text(name)


def draw(page: Page, shape: list[list[tuple[float, float]]], steps: int = 12) -> None:
    """Draw `shape` on the pad with the mouse, moving in small steps like a hand does."""
    box = page.locator("#pad").bounding_box()
    assert box is not None
    at = lambda p: (box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"])  # noqa: E731
    for stroke in shape:
        page.mouse.move(*at(stroke[0]))
        page.mouse.down()
        for start, end in itertools.pairwise(stroke):
            for i in range(1, steps + 1):
                t = i / steps
                page.mouse.move(
                    *at((start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t))
                )
        page.mouse.up()


def draw_with_a_finger(page: Page, shape: list[list[tuple[float, float]]], steps: int = 12) -> None:
    """Draw `shape` with touch events (Chromium turns them into pointer events, as on a phone)."""
    box = page.locator("#pad").bounding_box()
    assert box is not None
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, p: tuple[float, float] | None = None) -> None:
        points = (
            []
            if p is None
            else [{"x": box["x"] + p[0] * box["width"], "y": box["y"] + p[1] * box["height"]}]
        )
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    for stroke in shape:
        touch("touchStart", stroke[0])
        for start, end in itertools.pairwise(stroke):
            for i in range(1, steps + 1):
                t = i / steps
                touch(
                    "touchMove",
                    (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t),
                )
        touch("touchEnd")
    cdp.detach()


def guess(page: Page) -> list[str]:
    """The ten percentages the bars show, e.g. ["3%", "0%", …], once a guess has arrived."""
    expect(page.locator("#bars")).not_to_have_attribute("data-top", "")
    return page.locator("#bars .bar-value").all_inner_texts()


def top_guess(page: Page) -> int:
    guess(page)
    return int(page.locator("#bars").get_attribute("data-top") or "")


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


class Contexts:
    """Opens browser contexts (one per player) and checks what their pages did."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.requests: list[str] = []
        self.page_errors: list[str] = []
        self.contexts: list[BrowserContext] = []

    def page(
        self, path: str = "/", viewport: dict[str, int] | None = None, touch: bool = False
    ) -> Page:
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport=viewport or DESKTOP,
            reduced_motion="reduce",
            has_touch=touch,
            is_mobile=touch,
        )
        context.on("request", lambda request: self.requests.append(request.url))
        self.contexts.append(context)
        page = context.new_page()
        page.on("websocket", lambda websocket: self.requests.append(websocket.url))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("dialog", lambda dialog: dialog.accept())
        page.set_default_timeout(15_000)
        page.goto(path)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in LOCAL_HOSTS


def make_moderator(base_url: str, name: str) -> None:
    """What an admin of a small game does first: mark a trusted player a moderator."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=base_url, headers=headers) as admin:
        [player] = admin.get("/api/admin/players", params={"query": name}).json()
        marked = admin.post(f"/api/admin/players/{player['id']}/moderator")
        assert marked.status_code == 200, marked.text
