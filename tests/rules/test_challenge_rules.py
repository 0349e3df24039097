"""Challenge rules: which prompts a verified claim meets, once each, and which prompts an admin
may attach."""

from __future__ import annotations

import pytest

from game_rules.challenges import Prompt, PromptRefused, met, new_prompt
from game_rules.scoring import ChallengeMet, EventRefused, Scores
from server.config import default_rules

RULES = default_rules()
ANY_SEVEN = Prompt(1, 1, label=7, model_label=None, bonus=10)
THREE_AS_EIGHT = Prompt(2, 1, label=3, model_label=8, bonus=20)


def test_a_prompt_is_met_by_its_digit_read_as_another():
    assert met([ANY_SEVEN, THREE_AS_EIGHT], claimed=7, model_label=1, done=set()) == [ANY_SEVEN]
    assert met([ANY_SEVEN, THREE_AS_EIGHT], claimed=3, model_label=8, done=set()) == [
        THREE_AS_EIGHT
    ]


def test_a_prompt_is_not_met_by_another_reading_a_model_win_or_twice():
    assert met([THREE_AS_EIGHT], claimed=3, model_label=5, done=set()) == []
    assert met([ANY_SEVEN], claimed=7, model_label=7, done=set()) == []
    assert met([ANY_SEVEN], claimed=7, model_label=1, done={ANY_SEVEN.id}) == []


def test_prompts_read_as_sentences():
    assert ANY_SEVEN.text == "Fool it with a 7"
    assert THREE_AS_EIGHT.text == "Make your 3 read as an 8"
    assert Prompt(3, 1, 8, None, 5).text == "Fool it with an 8"


def test_an_admins_prompt_takes_the_default_bonus_and_is_checked():
    assert new_prompt({"label": 7}, 0, RULES) == (7, None, RULES.challenges.bonus_points)
    assert new_prompt({"label": 3, "model_label": 8, "bonus": 5}, 0, RULES) == (3, 8, 5)
    for body in ({"label": -1}, {"label": 3, "model_label": 3}, {"label": 3, "bonus": 0}, []):
        with pytest.raises(PromptRefused):
            new_prompt(body, 0, RULES)
    with pytest.raises(PromptRefused, match="at most"):
        new_prompt({"label": 3}, RULES.challenges.max_per_round, RULES)


def test_a_bonus_is_a_score_event_on_the_drawers_round_board():
    scores = Scores()
    scores.apply(ChallengeMet(1, 4, player_id=9, challenge_id=1, claim_id=3, points=10), RULES)
    assert scores.rounds[4][9].score == 10 and scores.all_time[9].score == 10
    assert 9 not in scores.validators
    with pytest.raises(EventRefused):
        scores.apply(ChallengeMet(2, 4, 9, 1, 3, points=-5), RULES)
