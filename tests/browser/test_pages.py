"""The other pages and views: validating, spectating, the admin console, the chart, and how
each page looks on a desktop and on a 360-px phone."""

from __future__ import annotations

import json

import pytest
from browser_helpers import (
    DESKTOP,
    PHONE,
    SEVEN,
    Contexts,
    draw,
    guess,
    horizontal_overflow,
    join,
    screenshot,
)
from live_server import ADMIN_TOKEN
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.browser


def admin_login(page: Page, token: str = ADMIN_TOKEN) -> None:
    page.fill("#login-token", token)
    page.click("#login-form button[type=submit]")


def test_validate_says_so_when_there_is_nothing_to_check(contexts: Contexts) -> None:
    page = contexts.page()
    join(page, "Ada")
    page.click("#tab-validate")
    expect(page.locator("#validate")).to_be_visible()
    expect(page.locator("#draw")).to_be_hidden()
    expect(page.locator("#task-empty")).to_contain_text("Nothing to check")
    expect(page.locator("#answers [data-answer='7']")).to_be_disabled()
    page.keyboard.press("ArrowLeft")  # the mode tabs follow the arrow keys
    expect(page.locator("#draw")).to_be_visible()


def test_a_spectator_watches_without_joining(contexts: Contexts) -> None:
    page = contexts.page("/leaderboard.html")
    expect(page.locator("#connection")).to_have_text("online")
    expect(page.locator("#banner [data-field=number]")).to_have_text("1")
    expect(page.locator("#banner [data-field=model]")).to_have_text("v1")
    expect(page.locator(".board-status")).to_contain_text("No scores yet")
    page.click("[data-board=validators]")
    expect(page.locator("[data-board=validators]")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".board-you")).to_be_hidden()


def test_the_admin_logs_in_and_runs_rounds_that_players_see(contexts: Contexts) -> None:
    player = contexts.page()
    join(player, "Grace")
    admin = contexts.page("/admin.html")

    admin_login(admin, "not-the-token")
    expect(admin.locator("#login-error")).to_contain_text("admin token")
    expect(admin.locator("#console")).to_be_hidden()

    admin_login(admin)
    rounds = admin.locator("#rounds tbody tr")
    expect(rounds).to_have_count(1)
    expect(rounds.first).to_contain_text("open")

    admin.click("#rounds [data-action=start]")  # a new round with the serving model
    expect(rounds).to_have_count(2)
    expect(player.locator("#banner [data-field=number]")).to_have_text("2")
    expect(player.locator(".toast", has_text="Round 2 has begun").first).to_be_visible()

    admin.click("button[aria-label='Close: round 2']")
    expect(player.locator("#banner [data-field=state]")).to_contain_text("closing")

    admin.reload()  # the token survives a reload of this tab
    expect(admin.locator("#console")).to_be_visible()


METRICS = [
    # v1 was tried too few times for a rate: no interval, so the chart draws none.
    {
        "version": "v1",
        "mnist_accuracy": 0.97,
        "heldout": {},
        "attempts": 2,
        "verified": 1,
        "vmer": 0.5,
        "vmer_interval": None,
    },
    {
        "version": "v2",
        "mnist_accuracy": 0.975,
        "heldout": {"1": 0.62},
        "attempts": 100,
        "verified": 18,
        "vmer": 0.18,
        "vmer_interval": [0.1171, 0.2665],
    },
    {
        "version": "v3",
        "mnist_accuracy": 0.978,
        "heldout": {"1": 0.81, "2": 0.7},
        "attempts": 200,
        "verified": 18,
        "vmer": 0.09,
        "vmer_interval": [0.0578, 0.1381],
    },
]


def test_the_chart_draws_each_series_per_model_version(contexts: Contexts) -> None:
    page = contexts.page("about:blank")

    # The documented /api/models/metrics payload (docs/http-api.md), served by the test.
    def metrics(route: Route) -> None:
        route.fulfill(content_type="application/json", body=json.dumps(METRICS))

    page.route("**/api/models/metrics", metrics)
    page.goto("/leaderboard.html")
    chart = page.locator("#history .chart")
    expect(chart).to_be_visible()
    expect(chart.locator("polyline")).to_have_count(3)
    expect(chart.locator("circle.series-mnist")).to_have_count(3)
    expect(chart.locator("circle.series-heldout")).to_have_count(2)  # v1 has no held-out set
    expect(chart.locator("text", has_text="v3")).to_have_count(1)
    expect(page.locator("#history tbody tr").nth(2)).to_contain_text("97.8%")
    # The fooled rate: only where there were enough attempts, each with its interval and count.
    expect(chart.locator("circle.series-vmer")).to_have_count(2)
    expect(chart.locator("line.interval")).to_have_count(2)
    expect(page.locator("#history tbody tr").nth(0)).to_contain_text("2 attempts: too few")
    expect(page.locator("#history tbody tr").nth(2)).to_contain_text(
        "18 of 200 attempts, 95% interval 5.8–13.8%"
    )


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_screenshots_of_every_page_fit_the_screen(contexts: Contexts, device: str) -> None:
    viewport = DESKTOP if device == "desktop" else PHONE
    page = contexts.page("/", viewport=viewport)
    screenshot(page, f"join-{device}")
    join(page, f"Ada {device}")
    draw(page, SEVEN)
    guess(page)
    page.click("#picker [data-digit='7']")
    screenshot(page, f"play-{device}")
    assert horizontal_overflow(page) == 0
    page.click("#submit")
    expect(page.locator("#result")).to_be_visible()
    screenshot(page, f"result-{device}")

    page.click("#tab-validate")
    expect(page.locator("#task-empty")).to_contain_text("Nothing to check")
    screenshot(page, f"validate-{device}")
    assert horizontal_overflow(page) == 0

    page.goto("/leaderboard.html")
    expect(page.locator("#connection")).to_have_text("online")
    screenshot(page, f"leaderboard-{device}")
    assert horizontal_overflow(page) == 0

    page.goto("/admin.html")
    admin_login(page)
    expect(page.locator("#rounds tbody tr")).to_have_count(1)
    screenshot(page, f"admin-{device}")
    assert horizontal_overflow(page) == 0
