"""The page when the network misbehaves: the server goes away and comes back; nothing it asks
for leaves this machine."""

from __future__ import annotations

import pytest
from browser_helpers import ONE, SEVEN, Contexts, draw, guess, is_local, join
from live_server import ProcessServer
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_page_says_reconnecting_and_recovers_without_a_reload(
    contexts: Contexts, game: ProcessServer
) -> None:
    page = contexts.page()
    join(page, "Ada")
    page.evaluate("window.notReloaded = true")
    draw(page, SEVEN)
    guess(page)

    game.kill()
    expect(page.locator("#offline")).to_be_visible()
    expect(page.locator("#offline")).to_contain_text("Reconnecting")
    expect(page.locator("#connection")).to_have_text("reconnecting…")
    page.click("#picker [data-digit='7']")
    page.click("#submit")  # while the server is down: a readable error, not a silent failure
    expect(page.locator(".toast-error", has_text="connect").first).to_be_visible()

    game.start()  # the same port, the same data directory
    expect(page.locator("#connection")).to_have_text("online", timeout=30_000)
    expect(page.locator("#offline")).to_be_hidden()
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#player-name")).to_have_text("Ada")  # resumed with the saved token
    expect(page.locator("#join")).not_to_be_visible()

    page.click("#clear")
    draw(page, ONE)
    guess(page)
    page.click("#submit")
    expect(page.locator("#result")).to_be_visible()


def test_no_request_leaves_this_machine(contexts: Contexts) -> None:
    for path in ("/", "/leaderboard.html", "/admin.html"):
        page = contexts.page(path)
        page.wait_for_load_state("networkidle")
    assert any(url.endswith("/style.css") for url in contexts.requests)
    assert any("/ws" in url for url in contexts.requests)
    assert all(is_local(url) for url in contexts.requests), contexts.requests
