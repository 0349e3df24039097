"""Playing in a real browser: join, draw with the mouse, watch the live guess, submit."""

from __future__ import annotations

import httpx
import pytest
from browser_helpers import (
    ONE,
    PHONE,
    SEVEN,
    ZERO,
    Contexts,
    draw,
    draw_with_a_finger,
    guess,
    join,
    top_guess,
)
from live_server import ADMIN_TOKEN, ProcessServer
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_drawing_shows_a_live_guess_that_follows_the_drawing(contexts: Contexts) -> None:
    page = contexts.page()
    predicts: list[str] = []  # the drawing messages that ask for a guess (protocol v2)
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framesent", lambda f: predicts.append(f) if '"guess":true' in f else None
        ),
    )
    join(page, "Ada")
    expect(page.locator("#bars .bar-value").first).to_have_text("–")

    draw(page, SEVEN)
    seven = guess(page)
    assert len(seven) == 10 and all(value.endswith("%") for value in seven)
    assert predicts, "no live guess was asked for while drawing"
    # Only what changed is sent: after the first stroke_start, the new points of the stroke.
    assert '"type":"stroke_start"' in predicts[0]
    assert any('"type":"points"' in frame for frame in predicts)

    page.click("#clear")
    expect(page.locator("#bars")).to_have_attribute("data-top", "")
    draw(page, ZERO)
    expect(page.locator("#bars .bar-value")).not_to_have_text(seven)

    page.click("#undo")  # back to an empty pad: no guess, and an empty pad is never sent
    expect(page.locator("#bars")).to_have_attribute("data-top", "")
    assert not any('"strokes":[]' in frame for frame in predicts)


def test_submitting_says_whether_the_model_was_fooled(contexts: Contexts) -> None:
    page = contexts.page()
    join(page, "Grace")

    draw(page, ONE)
    seen = top_guess(page)
    page.keyboard.press(str((seen + 1) % 10))  # keys pick the digit too
    expect(page.locator(f"#picker [data-digit='{(seen + 1) % 10}']")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.click("#submit")
    expect(page.locator("#result")).to_contain_text("Fooled it!")
    expect(page.locator("#result")).to_contain_text("Waiting for verification")
    expect(page.locator("#bars")).to_have_attribute("data-top", "")  # a fresh, empty pad

    draw(page, ONE)
    seen = top_guess(page)
    page.click(f"#picker [data-digit='{seen}']")
    page.click("#submit")
    expect(page.locator("#result")).to_contain_text(f"The model saw a {seen}.")


def test_a_finger_draws_on_a_phone(contexts: Contexts) -> None:
    page = contexts.page("/", viewport=PHONE, touch=True)
    join(page, "Katherine")
    draw_with_a_finger(page, SEVEN)
    guess(page)
    expect(page.locator("#submit")).to_have_text("Pick a digit, then submit")
    page.click("#picker [data-digit='7']")
    page.click("#submit")
    expect(page.locator("#result")).to_be_visible()


def test_submit_needs_ink_and_a_digit(contexts: Contexts) -> None:
    page = contexts.page()
    join(page, "Linus")
    submit = page.locator("#submit")
    expect(submit).to_be_disabled()
    page.click("#picker [data-digit='4']")
    expect(submit).to_be_disabled()  # still no ink
    draw(page, ONE)
    expect(submit).to_be_enabled()
    expect(submit).to_have_text("Submit: this is a 4")


def test_a_taken_name_is_refused_with_the_servers_reason(contexts: Contexts) -> None:
    join(contexts.page(), "Alan")
    second = contexts.page()
    second.fill("#join-name", "alan")
    second.click("#join button[type=submit]")
    expect(second.locator("#join-error")).to_contain_text("taken")
    join(second, "Alan Two")


def test_a_returning_player_is_recognised_by_the_saved_token(contexts: Contexts) -> None:
    page = contexts.page()
    join(page, "Barbara")
    page.reload()
    expect(page.locator("#connection")).to_have_text("online")
    expect(page.locator("#player-name")).to_have_text("Barbara")
    expect(page.locator("#join")).not_to_be_visible()


def test_an_unknown_saved_token_asks_for_a_name_again(contexts: Contexts) -> None:
    page = contexts.page("about:blank")
    page.context.add_init_script("localStorage.setItem('ftm.token', 'no-such-player')")
    page.goto("/")
    expect(page.locator("#join")).to_be_visible()
    expect(page.locator("#join-error")).not_to_be_empty()
    join(page, "Margaret")
    assert page.evaluate("localStorage.getItem('ftm.token')") != "no-such-player"


def test_round_changes_reach_the_page_and_submit_errors_are_readable(
    contexts: Contexts, game: ProcessServer
) -> None:
    page = contexts.page()
    join(page, "Edsger")
    expect(page.locator("#banner [data-field=number]")).to_have_text("1")
    expect(page.locator("#banner [data-field=state]")).to_have_text("open")

    closed = httpx.post(
        f"{game.http}/api/admin/rounds/1/close",
        json={"state": "closing"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert closed.status_code == 200, closed.text
    expect(page.locator("#banner [data-field=state]")).to_contain_text("closing")

    draw(page, SEVEN)
    page.click("#picker [data-digit='7']")
    page.click("#submit")
    expect(page.locator(".toast-error", has_text="round").first).to_be_visible()
    expect(page.locator("#result")).to_be_hidden()
