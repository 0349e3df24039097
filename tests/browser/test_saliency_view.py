"""Through the model's eyes: the 28×28 input and the heat map appear for a drawing (desktop mouse,
phone finger), and a submitted drawing stays on screen with the model's guess until the next."""

from __future__ import annotations

import re

import pytest
from browser_helpers import (
    ONE,
    SEVEN,
    Contexts,
    draw,
    draw_with_a_finger,
    horizontal_overflow,
    join,
    screenshot,
    top_guess,
)
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PHONE_390 = {"width": 390, "height": 844}

RED_INK = """(id) => {
  const data = document.getElementById(id).getContext("2d").getImageData(0, 0, 28, 28).data;
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] > 40) lit += 1;
  return lit;
}"""


def lit_pixels(page: Page, canvas: str) -> int:
    return int(page.evaluate(RED_INK, canvas))


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_model_shows_what_it_saw_and_where_it_looked(contexts: Contexts, device: str) -> None:
    phone = device == "phone"
    page = contexts.page("/", viewport=PHONE_390 if phone else None, touch=phone)
    join(page, "Ada")
    see = page.locator("#see")
    expect(page.locator("#see-ask")).to_be_disabled()  # nothing to look at yet

    (draw_with_a_finger if phone else draw)(page, SEVEN)
    top_guess(page)
    page.locator("#see-ask").click()
    expect(see.locator(".see-body")).to_be_visible()
    seen = see.get_attribute("data-label")
    expect(page.locator("#bars")).to_have_attribute("data-top", str(seen))  # the live guess's
    expect(page.locator("#see-caption")).to_contain_text(f"The model reads a {seen}")
    assert lit_pixels(page, "see-input") > 20, "the 28×28 input shows no ink"
    assert lit_pixels(page, "see-heat") > 0, "the heat map is cold everywhere"
    for canvas in ("#see-input", "#see-heat"):
        box = page.locator(canvas).bounding_box()
        assert box is not None and box["width"] >= 100, f"{canvas} is too small to see"
    assert horizontal_overflow(page) == 0
    screenshot(page, f"saliency-{device}")


def test_a_submitted_drawing_stays_with_its_guess_until_the_next(contexts: Contexts) -> None:
    page = contexts.page()
    join(page, "Grace")
    caption = page.locator("#see-caption")

    draw(page, SEVEN)
    top_guess(page)
    page.click("#picker [data-digit='7']")
    page.click("#submit")
    expect(caption).to_contain_text(re.compile(r"Your 7: the model saw a \d"))
    expect(page.locator("#see .see-body")).to_be_visible()
    said = caption.inner_text()
    input_ink = lit_pixels(page, "see-input")
    assert input_ink > 20

    # Drawing the next one (its live guess is the marker that the page has moved on) leaves the
    # submitted drawing where it was.
    draw(page, ONE)
    top_guess(page)
    assert caption.inner_text() == said
    assert lit_pixels(page, "see-input") == input_ink

    page.click("#picker [data-digit='1']")
    page.click("#submit")
    expect(caption).to_contain_text("Your 1: the model saw a")
