"""What the pages show stays true: a claim's result box follows the claim to its outcome (also
across a reconnect), the banner and the hall of fame move on the event, Submit is reachable on a
phone, a keyboard alone can play, and the admin console reads the registry and the trainer as
they are."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_helpers import (
    ONE,
    SEVEN,
    Contexts,
    draw,
    draw_with_a_finger,
    join,
    make_moderator,
    top_guess,
)
from live_server import ADMIN_TOKEN
from PIL import Image, ImageDraw
from playwright.sync_api import Page, Route, WebSocketRoute, expect
from waiting import assert_stays, wait_until

pytestmark = pytest.mark.browser

PHONE_390 = {"width": 390, "height": 844}  # the phone
SOON = 2_000  # ms: how soon after an event the page must show it


def banner(page: Page, field: str) -> str:
    return page.locator(f"#banner [data-field={field}]").inner_text()


def submit_a_claim(page: Page, touch: bool = False) -> int:
    """Draw a 1 and claim it is another digit: the model is wrong by construction."""
    (draw_with_a_finger if touch else draw)(page, ONE)
    claimed = (top_guess(page) + 1) % 10
    page.locator(f"#picker [data-digit='{claimed}']").click()
    page.locator("#submit").click()
    expect(page.locator("#result")).to_have_attribute("data-outcome", "pending")
    expect(page.locator("#result")).to_contain_text("Waiting for verification")
    return claimed


def validate(page: Page, answer: int) -> None:
    page.click("#tab-validate")
    expect(page.locator("#task-stage")).to_be_visible()
    page.keyboard.press(str(answer))


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_claim_box_reaches_verified_and_the_round_shows_it_at_once(
    lenient_rules: Path, contexts: Contexts, device: str
) -> None:
    phone = device == "phone"
    drawer = contexts.page("/", viewport=PHONE_390 if phone else None, touch=phone)
    join(drawer, "Ada")
    validator = contexts.page()
    join(validator, "Grace")
    make_moderator(contexts.base_url, "Grace")
    spectator = contexts.page("/leaderboard.html")
    expect(spectator.locator("#connection")).to_have_text("online")
    expect(spectator.locator("#fame .fame-status")).to_contain_text("No verified fools yet")

    claimed = submit_a_claim(drawer, touch=phone)
    for page in (drawer, spectator):  # the attempt counts at once, on every page
        expect(page.locator("#banner [data-field=attempts]")).to_have_text("in 1 try", timeout=SOON)

    validate(validator, claimed)
    box = drawer.locator("#result")
    expect(box).to_have_attribute("data-outcome", "verified")
    expect(box).to_contain_text("Verified!")
    expect(box).to_contain_text("points")
    for page in (drawer, spectator):
        expect(page.locator("#banner [data-field=fools]")).to_have_text("1", timeout=SOON)
        expect(page.locator("#fame .fame-card")).to_have_count(1, timeout=SOON)
        expect(page.locator("#fame .fame-status")).to_be_empty(timeout=SOON)

    # ...and stays so: no poll or late reply brings back an older state.
    def still_true() -> bool:
        return (
            box.get_attribute("data-outcome") == "verified"
            and banner(drawer, "fools") == "1"
            and banner(spectator, "attempts") == "in 1 try"
            and spectator.locator("#fame .fame-card").count() == 1
        )

    assert_stays(still_true, 2.0, "the pages went back on what they showed", poll=0.1)


class CuttableRelay:
    """The page's websocket, relayed to the real server; `deafen()` drops what the server
    says (as a dead link would), `reconnect()` ends the page's socket so that it connects again,
    this time heard."""

    def __init__(self, page: Page) -> None:
        self.deaf = False
        self.sockets: list[WebSocketRoute] = []
        self.welcomes: list[dict[str, Any]] = []
        page.route_web_socket("**/ws", self.route)

    def route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        self.sockets.append(ws)

        def down(message: str | bytes) -> None:
            if self.deaf:
                return
            parsed = json.loads(message)
            if parsed.get("type") == "welcome":
                self.welcomes.append(parsed)
            ws.send(message)

        server.on_message(down)
        ws.on_message(lambda message: server.send(message))

    def deafen(self) -> None:
        self.deaf = True

    def reconnect(self) -> None:
        self.deaf = False
        self.sockets[-1].close(code=1012, reason="server restarting")


def test_an_outcome_that_arrived_while_away_shows_on_reconnect(
    lenient_rules: Path, contexts: Contexts
) -> None:
    drawer = contexts.page("about:blank")
    relay = CuttableRelay(drawer)
    drawer.goto("/")
    join(drawer, "Ada")
    validator = contexts.page()
    join(validator, "Grace")
    make_moderator(contexts.base_url, "Grace")

    claimed = submit_a_claim(drawer)
    relay.deafen()
    validate(validator, claimed)
    with httpx.Client(base_url=contexts.base_url) as public:
        wait_until(
            lambda: public.get("/api/hall-of-fame").json(), 15, "the claim was never verified"
        )
    # The push never reached the page: it still (truly, as far as it heard) waits.
    box = drawer.locator("#result")
    expect(box).to_have_attribute("data-outcome", "pending")

    relay.reconnect()
    expect(box).to_have_attribute("data-outcome", "verified")
    assert len(relay.welcomes) == 2  # it was the new connection's welcome that told
    expect(box).to_contain_text("Verified!")
    expect(drawer.locator("#banner [data-field=fools]")).to_have_text("1")
    expect(drawer.locator("#fame .fame-card")).to_have_count(1)


def test_a_claim_waiting_before_a_reload_is_followed_after_it(
    lenient_rules: Path, contexts: Contexts
) -> None:
    drawer = contexts.page()
    join(drawer, "Ada")
    validator = contexts.page()
    join(validator, "Grace")
    make_moderator(contexts.base_url, "Grace")
    claimed = submit_a_claim(drawer)

    drawer.reload()
    expect(drawer.locator("#connection")).to_have_text("online")
    box = drawer.locator("#result")
    expect(box).to_have_attribute("data-outcome", "pending")
    validate(validator, claimed)
    expect(box).to_have_attribute("data-outcome", "verified")


def test_submit_is_on_screen_after_drawing_on_a_phone(contexts: Contexts) -> None:
    page = contexts.page("/", viewport=PHONE_390, touch=True)
    join(page, "Ada")
    draw_with_a_finger(page, SEVEN)
    top_guess(page)
    assert page.evaluate("window.scrollY") == 0
    for target in ("#bars", "#picker [data-digit='0']", "#picker [data-digit='9']", "#submit"):
        expect(page.locator(target)).to_be_in_viewport(ratio=1)
    page.locator("#picker [data-digit='7']").click()
    submit = page.locator("#submit")
    expect(submit).to_be_enabled()
    expect(submit).to_be_in_viewport(ratio=1)
    assert page.evaluate("window.scrollY") == 0  # nothing above had to scroll to reach it
    submit.click()
    expect(page.locator("#result")).to_be_in_viewport()


def digit_png(path: Path) -> Path:
    """A photo-like PNG of a handwritten 7: black ink on white."""
    image = Image.new("L", (200, 200), 255)
    pen = ImageDraw.Draw(image)
    pen.line([(50, 40), (150, 40), (90, 170)], fill=0, width=16)
    image.save(path, format="PNG")
    return path


def test_a_keyboard_only_player_submits_a_picture(contexts: Contexts, tmp_path: Path) -> None:
    page = contexts.page()
    expect(page.locator("#join-name")).to_be_focused()
    page.keyboard.type("Ada")
    page.keyboard.press("Enter")
    expect(page.locator("#connection")).to_have_text("online")

    # Tab reaches "Use a picture…" (a file input; the file dialog is the system's, keyboard
    # operable too).
    for _ in range(30):
        if page.evaluate("document.activeElement?.id") == "upload":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement?.id") == "upload"
    page.locator("#upload").set_input_files(digit_png(tmp_path / "seven.png"))

    expect(page.locator("#upload-preview")).to_be_visible()
    summary = page.locator("#guess-summary")  # the polite live region screen readers announce
    expect(summary).to_contain_text("model")
    expect(page.locator("#picker")).to_be_focused()
    page.keyboard.press("7")
    expect(page.locator("#submit")).to_have_text("Submit: this is a 7")
    page.keyboard.press("Enter")
    result = page.locator("#result")
    expect(result).to_be_visible()
    expect(result).to_contain_text("7")
    expect(page.locator("#upload-preview")).to_be_hidden()  # the next drawing starts afresh


@pytest.fixture
def two_models(data_dir: Path, linear_onnx_model: Any) -> Path:
    """v1 and v2 registered: the newest serves the first round, the other may be rolled back
    to."""
    from data_dirs import add_model

    add_model(data_dir, "v2", linear_onnx_model(seed=2))
    return data_dir


def log_in(contexts: Contexts) -> Page:
    admin = contexts.page("/admin.html")
    admin.fill("#login-token", ADMIN_TOKEN)
    admin.click("#login-form button[type=submit]")
    expect(admin.locator("#console")).to_be_visible()
    return admin


def test_the_registry_shows_accuracy_dates_and_no_rollback_on_the_serving_model(
    two_models: Path, contexts: Contexts
) -> None:
    admin = log_in(contexts)
    serving = admin.locator("#models tr[data-status=serving]")
    expect(serving).to_have_count(1)
    expect(serving).to_contain_text("v2")
    expect(serving).to_contain_text("serving")
    expect(serving.locator("button")).to_have_count(0)
    for row in admin.locator("#models tbody tr").all():
        expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
        expect(row.locator("td").nth(5)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
    other = admin.locator("#models tr[data-version=v1]")
    expect(other.get_by_role("button", name="Roll back to v1")).to_be_visible()


def test_a_wrong_admin_token_says_where_the_right_one_is(contexts: Contexts) -> None:
    admin = contexts.page("/admin.html")
    admin.fill("#login-token", "not-the-token")
    admin.click("#login-form button[type=submit]")
    expect(admin.locator("#login-error")).to_contain_text("admin token is not right")
    expect(admin.locator("#login-error")).to_contain_text("admin_token")


def trainer_reports(epochs: int, steps_per_epoch: int) -> list[dict[str, Any]]:
    """What GET /api/admin/trainer says over one job (docs/http-api.md): each phase, and the
    training steps counted over all epochs, as the trainer reports them."""
    steps = epochs * steps_per_epoch
    job = {"id": 1, "trigger": "admin", "state": "running", "epochs": epochs, "steps": steps}
    reports = [{**job, "phase": "loading", "epoch": 1, "step": 0}]
    for step in range(0, steps + 1, steps_per_epoch // 2):
        epoch = min(epochs, step // steps_per_epoch + 1)
        reports.append({**job, "phase": "training", "epoch": epoch, "step": step, "loss": 0.3})
    reports.append({**job, "phase": "exporting", "epoch": epochs, "step": steps})
    reports.append({**job, "phase": "gating", "epoch": epochs, "step": steps})
    reports.append({**job, "state": "succeeded", "outcome": "passed", "step": steps})
    return reports


def test_the_trainer_names_its_phases_and_its_bar_only_moves_forward(
    contexts: Contexts,
) -> None:
    epochs = 3
    reports = trainer_reports(epochs, steps_per_epoch=100)
    served = {"n": 0}

    def trainer(route: Route) -> None:
        report = reports[min(served["n"], len(reports) - 1)]
        served["n"] += 1
        route.fulfill(content_type="application/json", body=json.dumps(report))

    admin = contexts.page("about:blank")
    admin.route("**/api/admin/trainer", trainer)
    admin.goto("/admin.html")
    admin.fill("#login-token", ADMIN_TOKEN)
    admin.click("#login-form button[type=submit]")

    bar = admin.locator("#trainer progress")
    detail = admin.locator("#trainer .trainer-detail")
    seen: list[float] = []
    words: list[str] = []

    def record() -> bool:
        value = float(bar.evaluate("b => b.value"))
        text = detail.inner_text()
        if not words or text != words[-1]:
            seen.append(value)
            words.append(text)
        return served["n"] > len(reports)

    wait_until(record, 60, "the console stopped asking for the trainer", poll=0.05)
    assert seen == sorted(seen), f"the bar moved backwards: {seen}"
    assert max(b - a for a, b in itertools.pairwise(seen)) <= 1 / epochs + 1e-9, seen
    assert seen[-1] == 1
    text = " | ".join(words)
    for phase in ("loading data", "training", "epoch 2/3", "exporting", "gating"):
        assert phase in text, text
