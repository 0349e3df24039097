"""Names: NFKC-normalised, unique by what they look like (UTS #39 confusable skeleton, case
folded), and never invisible."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from live_server import ThreadServer, join, open_client

from game_rules.names import NameInvalid, clean_name, name_key
from server.storage import NameTaken, open_repository

LOOKALIKES_OF_ADMIN = ["Admin", "admin", "ADMIN", "Аdmin", "Ａｄｍｉｎ", "𝔄𝔡𝔪𝔦𝔫", "Adrnin", "AdmIn"]


@pytest.mark.parametrize("name", LOOKALIKES_OF_ADMIN)
def test_names_that_look_alike_share_a_key(name: str) -> None:
    assert name_key(clean_name(name)) == name_key("Admin")


@pytest.mark.parametrize("name", ["Ada", "Adam", "Grace", "Аda", "Ада Лавлейс", "李雷"])
def test_names_that_look_different_keep_different_keys(name: str) -> None:
    assert name_key(clean_name(name)) != name_key("Admin")


def test_styled_and_full_width_letters_are_shown_plain() -> None:
    assert clean_name("  Ａｄｍｉｎ ") == "Admin"
    assert clean_name("𝔄𝔡𝔪𝔦𝔫") == "Admin"


@pytest.mark.parametrize(
    "name",
    [
        "\u3164\u3164",  # Hangul fillers: a blank name
        "\u115f\u115f\u115f",
        "Ad\u200bmin",  # zero-width space
        "Ad\u200dmin",  # zero-width joiner
        "\ufeffAdmin",
        "Ad\u00admin",  # soft hyphen
        "..",
        "  ",
    ],
)
def test_invisible_or_empty_names_are_refused(name: str) -> None:
    with pytest.raises(NameInvalid):
        clean_name(name)


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12))
def test_a_key_ignores_case_whatever_the_name(text: str) -> None:
    assert name_key(text.upper()) == name_key(text.lower()) == name_key(text.casefold())


async def test_a_look_alike_of_a_taken_name_is_taken(server: ThreadServer) -> None:
    await join(server.ws, "Admin")
    for name in ("Аdmin", "Ａｄｍｉｎ", "𝔄𝔡𝔪𝔦𝔫"):
        client = await open_client(server.ws)
        refused = await client.request({"type": "hello", "v": 1, "name": name}, "welcome")
        assert refused["code"] == "name_taken", name
    blank = await open_client(server.ws)
    refused = await blank.request({"type": "hello", "v": 1, "name": "\u3164\u3164"}, "welcome")
    assert refused["code"] == "name_invalid"


async def test_keys_stored_by_an_older_rule_are_recomputed(database_url: str) -> None:
    repo = await open_repository(database_url)
    try:
        # As the old rule (case folding only) stored them: two look-alikes side by side.
        admin = await repo.create_player("Admin", "admin", "h1")
        cyrillic = await repo.create_player("Аdmin", "аdmin", "h2")
        assert await repo.rekey_players(name_key) == 2
        assert await repo.rekey_players(name_key) == 0  # then nothing is left to do
        with pytest.raises(NameTaken):
            await repo.create_player("Ａｄｍｉｎ", name_key("Ａｄｍｉｎ"), "h3")
        assert (admin.name, cyrillic.name) == ("Admin", "Аdmin")  # names are kept
    finally:
        await repo.close()
