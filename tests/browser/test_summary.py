"""The end-of-session summary: "End session" shows this visit's drawings, fools, the best fool
and the rank change since the page joined, and the player can keep playing."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from browser_helpers import (
    ONE,
    SEVEN,
    Contexts,
    draw_with_a_finger,
    horizontal_overflow,
    join,
    screenshot,
)
from live_server import ADMIN_TOKEN, ProcessServer, db_rows
from playwright.sync_api import Page, expect
from waiting import wait_until

pytestmark = pytest.mark.browser


def summary_value(page: Page, term: str) -> str:
    value = page.locator(f"#summary dt:text-is('{term}') + dd")
    return value.inner_text()


def test_end_session_sums_up_the_visit(
    contexts: Contexts, game: ProcessServer, data_dir: Path
) -> None:
    page = contexts.page("/", viewport={"width": 390, "height": 844}, touch=True)
    join(page, "Ada")
    assert horizontal_overflow(page) == 0  # the header's new button fits on a phone

    draw_with_a_finger(page, SEVEN)
    page.click("#picker [data-digit='7']")
    page.click("#submit")
    expect(page.locator("#result")).to_contain_text("Fooled it!")
    page.locator("#pad").scroll_into_view_if_needed()  # the result box may have scrolled it away
    draw_with_a_finger(page, ONE)
    page.click("#picker [data-digit='1']")
    page.click("#submit")
    expect(page.locator("#result")).to_contain_text(re.compile("your 1|stranger 1"))

    pending = wait_until(
        lambda: db_rows(
            data_dir,
            "SELECT c.attempt_id, a.label FROM claims c JOIN attempts a ON a.id = c.attempt_id"
            " WHERE c.state = 'pending'",
        ),
        15,
        "the claim is stored",
    )
    admin = httpx.Client(base_url=game.http, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    for attempt_id, claimed in pending:
        assert admin.post(f"/api/admin/review/{attempt_id}", json={"label": claimed}).is_success
    expect(page.locator(".toast-good", has_text="Verified").first).to_be_visible()

    page.click("#end-session")
    expect(page.locator("#summary")).to_be_visible()
    assert summary_value(page, "Drawings") == "2"
    assert summary_value(page, "Fooled the model") == str(len(pending))
    assert re.fullmatch(r"your 7, read as a \d \(\d+% sure\)", summary_value(page, "Best fool"))
    assert summary_value(page, "Verified so far").startswith(f"{len(pending)} (+")
    assert summary_value(page, "All-time rank") == "unranked → #1"
    screenshot(page, "summary-phone")

    page.click("#summary [data-action=close]")
    expect(page.locator("#summary")).to_be_hidden()
    expect(page.locator("#connection")).to_have_text("online")  # still playing
