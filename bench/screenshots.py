"""Take the README's screenshots (docs/images/) from a real game serving the real model.

    make screenshots    # or: python bench/screenshots.py [--data-dir data] [--out docs/images]

A fresh game in a temporary data directory serves the newest model of DATA (the one `make run`
serves; `make model` trains it) on a free port, started the way the browser tests start theirs.
In Chromium (Debian's, through Playwright): Ada (and Lin, on a phone) draw digits until the
served model misreads one (a drawing from the list below that it gets wrong) and claim what
they drew; Grace, an admin-marked moderator (a small game's way, README "Trust"), reads them
blind and agrees, so the foolings are verified. Nothing is staged: every number on the
pictures comes from that server. Desktop (1280×860) and phone (390×844, touch) shots of play,
validate, spectator and admin.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "server")]

from live_server import ADMIN_TOKEN, ProcessServer  # noqa: E402

from server.config import DataLayout  # noqa: E402
from server.serving.model_files import latest_model  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
expect.set_options(timeout=30_000)
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
MAX_TASKS = 10  # a validator's answers before the game must have run out of claims
# A small game: no gold, and a moderator's vote decides (README, "Trust").
RULES = """
[gold]
rate = 0.0
warmup_answers = 0

[trust]
learning_gold_rate = 0.0

[leaderboard]
push_interval_seconds = 0.2
"""
# Digits people read at a glance, as strokes over the pad (fractions of its size), in the
# order they are tried: the first one the served model misreads is the one submitted.
CANDIDATES: list[tuple[int, list[list[tuple[float, float]]]]] = [
    (0, [[(0.5, 0.15), (0.65, 0.5), (0.5, 0.85), (0.35, 0.5), (0.5, 0.15)]]),  # a diamond 0
    (0, [[(0.55, 0.15), (0.5, 0.15), (0.62, 0.5), (0.5, 0.85), (0.4, 0.5), (0.55, 0.15)]]),
    (0, [[(0.5, 0.15), (0.6, 0.5), (0.5, 0.85), (0.4, 0.5), (0.5, 0.15)]]),  # a narrow 0
    (1, [[(0.4, 0.25), (0.55, 0.15), (0.55, 0.85)]]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args()
    card = latest_model(DataLayout(args.data_dir))
    if card is None:
        sys.exit(f"No model in {args.data_dir}/models: run `make model` first.")
    args.out.mkdir(parents=True, exist_ok=True)
    with game_serving(args.data_dir, card.version) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless"])
        shots = Shots(browser, server.http, args.out)
        shots.take()
        browser.close()
    print(f"model {card.version}: wrote {', '.join(sorted(shots.written))} to {args.out}")


@contextmanager
def game_serving(data_dir: Path, version: str) -> Iterator[ProcessServer]:
    with tempfile.TemporaryDirectory(prefix="ftm-screenshots-") as tmp:
        game_dir = Path(tmp) / "data"
        models = DataLayout(game_dir).models_dir
        models.mkdir(parents=True)
        for suffix in (".onnx", ".json"):
            name = f"{version}{suffix}"
            shutil.copyfile(DataLayout(data_dir).models_dir / name, models / name)
        # No MNIST here: without gold items, a validator runs out of tasks once the claims
        # are decided ("Nothing to check"), which is where the pictures are taken.
        (game_dir / "rules.toml").write_text(RULES)
        server = ProcessServer(game_dir).start()
        try:
            yield server
        finally:
            server.stop()


class Shots:
    def __init__(self, browser: Browser, base_url: str, out: Path) -> None:
        self.browser = browser
        self.base_url = base_url
        self.out = out
        self.written: list[str] = []

    def page(self, path: str, phone: bool = False) -> Page:
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport=PHONE if phone else DESKTOP,
            has_touch=phone,
            is_mobile=phone,
            device_scale_factor=2 if phone else 1,
            reduced_motion="reduce",
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(path)
        return page

    def shoot(self, page: Page, name: str, full_page: bool = False) -> None:
        print(f"{name}.png", flush=True)
        page.evaluate(
            "document.getElementById('toasts')?.replaceChildren()"
        )  # no half-faded toasts
        page.screenshot(path=str(self.out / f"{name}.png"), full_page=full_page)
        self.written.append(f"{name}.png")

    def take(self) -> None:
        ada = self.player("Ada")
        label = self.draw_a_fool(ada)
        self.shoot(ada, "play")
        ada.click("#submit")
        expect(ada.locator("#result")).to_contain_text("Fooled it!")

        lin = self.player("Lin", phone=True)
        self.draw_a_fool(lin)
        self.shoot(lin, "play-phone")
        lin.click("#submit")
        expect(lin.locator("#result")).to_contain_text("Fooled it!")

        grace = self.player("Grace")
        max_ = self.player("Max", phone=True)
        for name in ("Grace", "Max"):
            self.make_moderator(name)
        max_.click("#tab-validate")
        expect(max_.locator("#task-stage")).to_be_visible()
        self.shoot(max_, "validate-phone")
        grace.click("#tab-validate")
        expect(grace.locator("#task-stage")).to_be_visible()
        self.shoot(grace, "validate")
        answer_every_task(grace, label)  # she reads what the drawers drew
        expect(ada.locator("#result")).to_contain_text("Verified!")
        expect(ada.locator("#fame .fame-card")).to_have_count(2)
        self.shoot(ada, "verified")

        for phone in (False, True):
            spectator = self.page("/leaderboard.html", phone=phone)
            expect(spectator.locator("#fame .fame-card")).to_have_count(2)
            expect(spectator.locator(".board-rows li").first).to_be_visible()
            self.shoot(spectator, "spectator-phone" if phone else "spectator", full_page=not phone)

            admin = self.page("/admin.html", phone=phone)
            admin.fill("#login-token", ADMIN_TOKEN)
            admin.click("#login-form button[type=submit]")
            expect(admin.locator("#models tr[data-status=serving]")).to_have_count(1)
            self.shoot(admin, "admin-phone" if phone else "admin", full_page=not phone)

    def player(self, name: str, phone: bool = False) -> Page:
        page = self.page("/", phone=phone)
        page.fill("#join-name", name)
        page.click("#join button[type=submit]")
        expect(page.locator("#connection")).to_have_text("online")
        return page

    def draw_a_fool(self, page: Page) -> int:
        """Draw the candidates until the served model misreads one; pick what it really is."""
        for label, shape in CANDIDATES:
            page.click("#clear")
            expect(page.locator("#bars")).to_have_attribute("data-top", "")
            draw(page, shape)
            expect(page.locator("#bars")).not_to_have_attribute("data-top", "")
            if int(page.locator("#bars").get_attribute("data-top") or "") != label:
                page.click(f"#picker [data-digit='{label}']")
                return label
        raise SystemExit("The served model reads every candidate right: add a harder one.")

    def make_moderator(self, name: str) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=self.base_url, headers=headers) as admin:
            [player] = admin.get("/api/admin/players", params={"query": name}).json()
            admin.post(f"/api/admin/players/{player['id']}/moderator").raise_for_status()


def answer_every_task(page: Page, answer: int) -> None:
    """Answer each task the validator gets until there is nothing left to check."""
    next_task_or_none = page.locator("#answers button:enabled, #task-empty:visible")
    for _ in range(MAX_TASKS):
        expect(next_task_or_none).not_to_have_count(0)
        if page.locator("#task-empty").is_visible():
            return
        page.keyboard.press(str(answer))  # disables the answers until the next task or none
    raise SystemExit(f"still getting tasks after {MAX_TASKS} answers")


def draw(page: Page, shape: list[list[tuple[float, float]]], steps: int = 12) -> None:
    """Draw `shape` on the pad with small moves, as a hand does."""
    box = page.locator("#pad").bounding_box()
    assert box is not None
    for stroke in shape:
        points = [
            (a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps)
            for a, b in itertools.pairwise(stroke)
            for i in range(steps)
        ] + [stroke[-1]]
        page.mouse.move(
            box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"]
        )
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.up()


if __name__ == "__main__":
    main()
