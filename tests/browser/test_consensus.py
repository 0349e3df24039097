"""The whole game with several people: one fools the model, another validates the drawing
blind, both leaderboards move, and an admin launches the next round that everyone sees.

The next-round part runs a real (tiny) retraining in the trainer worker, so it starts from a
trained model with its weights and the shared MNIST cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser_helpers import ONE, Contexts, draw, join, make_moderator, screenshot, top_guess
from data_dirs import SMALL_JOB, trained_data_dir
from live_server import ADMIN_TOKEN
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_fool_is_validated_and_scored(lenient_rules: Path, contexts: Contexts) -> None:
    fool_validated_and_scored(contexts)


@pytest.fixture
def retrainable(
    data_dir: Path, trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Model v1 with weights to fine-tune from, MNIST for the gate, and a tiny job size."""
    shutil.rmtree(data_dir)
    trained_data_dir(data_dir, trained_model)
    for name, value in SMALL_JOB.items():
        monkeypatch.setenv(name, value)
    return data_dir


def test_a_fool_survives_into_the_next_round(
    retrainable: Path, lenient_rules: Path, contexts: Contexts
) -> None:
    drawer, validator = fool_validated_and_scored(contexts)
    admin = contexts.page("/admin.html")
    admin.fill("#login-token", ADMIN_TOKEN)
    admin.click("#login-form button[type=submit]")
    admin.click("#rounds [data-action=next]")
    expect(admin.locator("#trainer .trainer-summary")).to_contain_text("Job")
    for page in (drawer, validator):
        expect(page.locator("#banner [data-field=number]")).to_have_text("2", timeout=240_000)
        expect(page.locator("#banner [data-field=model]")).to_have_text("v2")


def fool_validated_and_scored(contexts: Contexts) -> tuple[Page, Page]:
    """Ada fools the model, Grace validates the drawing blind; both boards show it."""
    drawer = contexts.page()
    join(drawer, "Ada")
    validator = contexts.page()
    join(validator, "Grace")
    make_moderator(contexts.base_url, "Grace")

    draw(drawer, ONE)
    claimed = (top_guess(drawer) + 1) % 10
    drawer.click(f"#picker [data-digit='{claimed}']")
    drawer.click("#submit")
    expect(drawer.locator("#result")).to_contain_text("Fooled it!")

    validator.click("#tab-validate")
    expect(validator.locator("#task-stage")).to_be_visible()
    screenshot(validator, "validate-task-desktop")
    validator.keyboard.press(str(claimed))  # Grace agrees with Ada's claim
    expect(drawer.locator("#result")).to_contain_text("Verified!")

    for page, name in ((drawer, "Ada"), (validator, "Ada")):
        expect(page.locator(".board-rows")).to_contain_text(name)
    expect(drawer.locator(".board-you-line")).to_contain_text("You are #1")
    validator.click("#leaderboard [data-board=validators]")
    expect(validator.locator(".board-rows")).to_contain_text("Grace")
    screenshot(drawer, "leaderboard-live-desktop")
    return drawer, validator
