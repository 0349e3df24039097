"""Rule settings: packaged defaults, deployment overrides, and clear refusals. `game_rules` parses
TOML text; the server reads the files (server/config.py `default_rules`, `load_rules`)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from game_rules.settings import RuleSettings, SettingsError, parse_settings, with_changes
from server.config import DataLayout, default_rules, load_rules

DEFAULTS = Path(__file__).resolve().parents[2] / "game_rules" / "defaults.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def rules_from_file(override: Path) -> RuleSettings:
    """The rules a server started with `FTM_RULES=override` plays by."""
    return load_rules(DataLayout(override.parent, rules_override=override))


def test_defaults_load_and_are_frozen() -> None:
    s = default_rules()
    assert isinstance(s, RuleSettings)
    assert s.consensus.min_trusted_voters >= 1
    assert s.consensus.reject_threshold < s.consensus.verify_threshold
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.consensus.vote_cap = 100  # type: ignore[misc]


def test_override_changes_only_the_given_keys(tmp_path: Path) -> None:
    base = default_rules()
    s = rules_from_file(write(tmp_path, "[consensus]\nvote_cap = 12\n[gold]\nrate = 0.3\n"))
    assert s.consensus.vote_cap == 12
    assert s.gold.rate == 0.3
    assert s.scoring == base.scoring
    assert s.consensus.verify_threshold == base.consensus.verify_threshold


def test_an_int_is_accepted_where_a_number_belongs(tmp_path: Path) -> None:
    s = rules_from_file(write(tmp_path, "[leaderboard]\npush_interval_seconds = 2\n"))
    assert s.leaderboard.push_interval_seconds == 2.0
    assert isinstance(s.leaderboard.push_interval_seconds, float)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[consensus]\nvote_kap = 3\n", "consensus.vote_kap"),
        ("[consensuss]\nvote_cap = 3\n", "consensuss"),
        ("top_level = 1\n", "top_level"),
        ('[consensus]\nvote_cap = "nine"\n', "consensus.vote_cap"),
        ("[consensus]\nvote_cap = 9.5\n", "consensus.vote_cap"),
        ("[consensus]\nvote_cap = true\n", "consensus.vote_cap"),
        ("[retrain]\nauto_open_next_round = 1\n", "retrain.auto_open_next_round"),
        ("consensus = 3\n", "consensus"),
        ("[consensus]\nverify_threshold = 1.5\n", "consensus.verify_threshold"),
        ("[consensus]\nreject_threshold = 0.995\n", "consensus.reject_threshold"),
        ("[scoring]\nrejected_penalty = -3\n", "scoring.rejected_penalty"),
        ("[consensus]\nvote_cap = 2\n", "consensus.vote_cap"),
        ("[gold]\nlease_seconds = 0\n", "gold.lease_seconds"),
        ("[gold]\nlease_slack = -1\n", "gold.lease_slack"),
    ],
)
def test_bad_override_is_refused_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(f"'{named}'")):
        rules_from_file(write(tmp_path, text))


def test_invalid_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not valid TOML"):
        rules_from_file(write(tmp_path, "[consensus\nvote_cap = 3"))
    with pytest.raises(SettingsError, match="cannot read"):
        rules_from_file(tmp_path / "missing.toml")


def test_with_changes_validates_too() -> None:
    s = with_changes(default_rules(), consensus={"vote_cap": 20})
    assert s.consensus.vote_cap == 20
    with pytest.raises(SettingsError, match=r"consensus\.nope"):
        with_changes(s, consensus={"nope": 1})


def test_the_rules_are_parsed_from_text_without_reading_files() -> None:
    defaults = DEFAULTS.read_text(encoding="utf-8")
    assert parse_settings(defaults) == default_rules()
    s = parse_settings(defaults, "[gold]\nrate = 0.3\n", "deploy.toml")
    assert (s.gold.rate, s.source) == (0.3, "defaults.toml + deploy.toml")
    with pytest.raises(SettingsError, match=re.escape("deploy.toml: unknown setting 'gold.nope'")):
        parse_settings(defaults, "[gold]\nnope = 1\n", "deploy.toml")


def test_the_data_directory_rules_apply_unless_ftm_rules_names_a_file(tmp_path: Path) -> None:
    assert load_rules(DataLayout(tmp_path)) == default_rules()  # no DATA/rules.toml
    write(tmp_path, "[consensus]\nvote_cap = 12\n")
    assert load_rules(DataLayout(tmp_path)).consensus.vote_cap == 12
    chosen = tmp_path / "chosen.toml"
    chosen.write_text("[consensus]\nvote_cap = 15\n", encoding="utf-8")
    assert load_rules(DataLayout(tmp_path, rules_override=chosen)).consensus.vote_cap == 15
