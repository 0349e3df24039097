"""A prompt round in the browser (desktop, and a 390×844 phone with a finger): the admin's prompt
appears on the play page, stays unmet after a submission (bonuses come with verification), and
is ticked, with its bonus on the leaderboard, once the claim is verified."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser_helpers import SEVEN, Contexts, draw, draw_with_a_finger, join, screenshot
from live_server import ADMIN_TOKEN, ProcessServer, db_rows
from playwright.sync_api import expect
from waiting import wait_until

pytestmark = pytest.mark.browser

BONUS = 25


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_prompt_round_awards_its_bonus(
    contexts: Contexts, game: ProcessServer, data_dir: Path, device: str
) -> None:
    phone = device == "phone"
    page = contexts.page(
        "/", viewport={"width": 390, "height": 844} if phone else None, touch=phone
    )
    join(page, "Ada")
    admin = httpx.Client(base_url=game.http, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    added = admin.post("/api/admin/rounds/1/challenges", json={"label": 7, "bonus": BONUS})
    assert added.status_code == 201, added.text
    prompt = page.locator("#challenges li")
    expect(prompt).to_have_text(f"Fool it with a 7 +{BONUS}")  # pushed, no reload
    expect(prompt).to_have_attribute("data-met", "false")

    (draw_with_a_finger if phone else draw)(page, SEVEN)
    page.click("#picker [data-digit='7']")
    page.click("#submit")
    expect(page.locator("#result")).to_contain_text("Fooled it!")  # the model reads no 7 here
    pending = wait_until(
        lambda: db_rows(data_dir, "SELECT attempt_id FROM claims WHERE state = 'pending'"),
        15,
        "the claim is stored",
    )
    expect(page.locator("#leaderboard")).to_contain_text("No scores yet")
    expect(prompt).to_have_attribute("data-met", "false")  # submitted is not verified

    decided = admin.post(f"/api/admin/review/{pending[0][0]}", json={"label": 7}).json()
    assert decided["outcome"] == "verified"
    expect(prompt).to_have_attribute("data-met", "true")
    expect(page.locator(".toast-good", has_text="Challenge met").first).to_be_visible()
    expect(page.locator(".board-rows")).to_contain_text(str(decided["points"] + BONUS))
    expect(prompt).to_have_attribute("data-met", "true")  # still ticked after the board moved
    screenshot(page, f"challenges-{device}")


def test_the_admin_console_attaches_a_prompt_players_see_at_once(contexts: Contexts) -> None:
    player = contexts.page()
    join(player, "Grace")
    expect(player.locator("#challenges")).to_be_hidden()  # free play: nothing to show

    admin = contexts.page("/admin.html")
    admin.fill("#login-token", ADMIN_TOKEN)
    admin.click("#login-form button[type=submit]")
    panel = admin.locator("#challenges")
    expect(panel.locator(".challenge-admin-list")).to_contain_text("free play")
    form = panel.locator("form")
    form.locator("[name=label]").fill("3")
    form.locator("[name=model_label]").fill("3")
    form.locator("button[type=submit]").click()
    expect(admin.locator(".toast", has_text="another digit").first).to_be_visible()
    expect(panel.locator(".challenge-admin-list")).to_contain_text("free play")  # nothing added

    form.locator("[name=model_label]").fill("8")
    form.locator("button[type=submit]").click()
    expect(panel.locator(".challenge-admin-list")).to_contain_text("Make your 3 read as an 8 +10")
    expect(player.locator("#challenges li")).to_have_text("Make your 3 read as an 8 +10")
