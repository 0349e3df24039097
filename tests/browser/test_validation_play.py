"""Validation as play (desktop and a 390×844 phone): a new validator answers the warm-up gold
and sees each "+1", a session tally, the streak and the warm-up meter counting up to done; a
reload shows the meter where it was, and what the page shows stays true."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import Contexts, horizontal_overflow, join, screenshot
from data_dirs import link_mnist
from live_server import db_rows
from playwright.sync_api import Page, expect
from waiting import assert_stays, wait_until

pytestmark = pytest.mark.browser

PHONE_390 = {"width": 390, "height": 844}
WARMUP = 3
THEN = "then you check other players' drawings."


@pytest.fixture
def warmup_rules(data_dir: Path) -> Path:
    """A warm-up of three gold answers (MNIST digits)."""
    path = data_dir / "rules.toml"
    path.write_text(f"[gold]\nrate = 0.0\nwarmup_answers = {WARMUP}\n")
    link_mnist(data_dir)
    return path


def answer_right(page: Page, data_dir: Path) -> None:
    """Answer the task on screen with its known answer (the test reads it; players cannot)."""
    expect(page.locator("#answers [data-answer='0']")).to_be_enabled()
    query = (
        "SELECT g.truth FROM tasks t JOIN gold g ON g.id = t.gold_id WHERE t.answered_at IS NULL"
    )
    [(truth,)] = wait_until(lambda: db_rows(data_dir, query), 10, "a gold task on screen")
    page.click(f"#answers [data-answer='{'x' if truth == 10 else truth}']")


def shows(page: Page, session: int, streak: int, meter: str) -> None:
    expect(page.locator("#session-points")).to_have_text(str(session))
    expect(page.locator("#streak")).to_have_text(str(streak))
    expect(page.locator("#warmup-text")).to_have_text(meter)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_new_validator_sees_points_streak_and_the_warm_up_meter(
    warmup_rules: Path, data_dir: Path, contexts: Contexts, device: str
) -> None:
    phone = device == "phone"
    page = contexts.page("/", viewport=PHONE_390 if phone else None, touch=phone)
    join(page, "Grace")
    page.click("#tab-validate")
    shows(page, 0, 0, f"0 of {WARMUP} warm-up answers — {THEN}")

    answer_right(page, data_dir)
    expect(page.locator("#vote-points")).to_have_text("+1")
    expect(page.locator("#vote-feedback")).to_have_text(
        f"Right! +1 1 of {WARMUP} warm-up answers — {THEN}"
    )
    shows(page, 1, 1, f"1 of {WARMUP} warm-up answers — {THEN}")

    # A reload is a new session, but the welcome brings back the streak and the meter.
    page.reload()
    expect(page.locator("#connection")).to_have_text("online")
    page.click("#tab-validate")
    shows(page, 0, 1, f"1 of {WARMUP} warm-up answers — {THEN}")

    answer_right(page, data_dir)
    expect(page.locator("#vote-feedback")).to_contain_text("2 in a row!")
    shows(page, 1, 2, f"2 of {WARMUP} warm-up answers — {THEN}")
    answer_right(page, data_dir)
    done = "Warm-up done: next come other players' drawings."
    expect(page.locator("#vote-feedback")).to_have_text(f"Right! +1 3 in a row! {done}")
    shows(page, 2, 3, done)
    expect(page.locator("#warmup")).to_have_attribute("data-done", "true")
    expect(page.locator("#answers [data-answer='0']")).to_be_enabled()  # the next task is up
    assert horizontal_overflow(page) == 0
    screenshot(page, f"validate-progress-{device}")

    # ...and it stays so: the next task takes back none of it.
    def still_true() -> bool:
        return (
            page.locator("#session-points").inner_text() == "2"
            and page.locator("#streak").inner_text() == "3"
            and page.locator("#vote-points").inner_text() == "+1"
            and page.locator("#warmup-text").inner_text() == done
        )

    assert_stays(still_true, 2.0, "the Validate view went back on what it showed", poll=0.1)
