"""Every tunable of the game in one frozen object, with defaults in `defaults.toml`.

Why one object: a rule designer should find every knob (points, thresholds, vote counts, gold
rate, retrain trigger) in one place, and a deployment should change them with one TOML file
without touching code. `parse_settings(defaults, override)` builds them from the TEXT of the
packaged defaults and of an optional override with the same sections and names; the server reads
those files (server/config.py: `default_rules`, `load_rules`), so the rules themselves do no I/O.
It is strict on purpose: a misspelt key silently ignored would run the game with a rule nobody
chose, so unknown keys, wrong types and impossible values are refused with the dotted name of the
key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from typing import Any, get_type_hints

DEFAULTS_SOURCE = "defaults.toml"  # the packaged defaults, next to this module


class SettingsError(ValueError):
    """A settings file is malformed; the message names the key and what to do."""


@dataclass(frozen=True)
class Scoring:
    fool_base_points: int
    fool_confidence_points: int
    rejected_penalty: int
    relabelled_penalty: int
    validator_match_points: int
    validator_miss_penalty: int
    gold_correct_points: int
    gold_miss_penalty: int
    validation_round_cap: int


@dataclass(frozen=True)
class Reliability:
    prior_correct: float
    prior_wrong: float
    min_reliability: float
    confusion_min_gold: int
    confusion_prior_strength: float
    max_likelihood_ratio: float


@dataclass(frozen=True)
class Collusion:
    standing_min_settled: int
    standing_error_floor: float
    standing_z: float
    standing_together_floor: float
    pair_min_votes: int
    pair_z: float
    pair_margin: float
    cluster_min_settled: int
    cluster_z: float
    drawer_refuted_min: int
    refuted_floor: float
    drawer_prior_verified: float
    drawer_prior_rejected: float


@dataclass(frozen=True)
class Trust:
    established_evidence: int
    established_span_seconds: float
    min_weight: float
    min_established_voters: int
    oracle_min_hard: int
    oracle_follow_share: float
    cluster_extra_voters: int
    learning_gold_rate: float


@dataclass(frozen=True)
class Consensus:
    verify_threshold: float
    reject_threshold: float
    min_trusted_voters: int
    dissent_extra_voters: int
    contest_voters: int
    vote_cap: int
    model_prior: float


@dataclass(frozen=True)
class Gold:
    rate: float
    warmup_answers: int
    settled_gold_posterior: float
    assignment_pool: int
    probation_claim_rate: float
    settled_share: float
    lease_seconds: float
    lease_slack: int


@dataclass(frozen=True)
class Accounts:
    per_address_burst: int
    per_address_per_hour: float
    overall_burst: int
    overall_per_minute: float


@dataclass(frozen=True)
class Leaderboard:
    top_n: int
    neighbours: int
    push_interval_seconds: float


@dataclass(frozen=True)
class Chart:
    min_attempts: int


@dataclass(frozen=True)
class Retrain:
    new_verified_threshold: int
    auto_open_next_round: bool
    heldout_fraction: float
    min_train_drawings: int


@dataclass(frozen=True)
class Challenges:
    bonus_points: int
    max_bonus_points: int
    max_per_round: int


@dataclass(frozen=True)
class RuleSettings:
    scoring: Scoring
    reliability: Reliability
    collusion: Collusion
    trust: Trust
    consensus: Consensus
    gold: Gold
    accounts: Accounts
    leaderboard: Leaderboard
    chart: Chart
    retrain: Retrain
    challenges: Challenges
    # Where the values came from, for logs and error messages; not a rule.
    source: str = field(default=DEFAULTS_SOURCE, compare=False)

    def __post_init__(self) -> None:
        _check_values(self)


def parse_settings(
    defaults: str, override: str | None = None, override_source: str = "override"
) -> RuleSettings:
    """The rules from the packaged defaults' TOML text, with `override` (a deployment's TOML
    text, named `override_source` in errors) applied on top."""
    merged = _parse(defaults, DEFAULTS_SOURCE)
    source = DEFAULTS_SOURCE
    if override is not None:
        _merge(merged, _parse(override, override_source), override_source, prefix="")
        source = f"{DEFAULTS_SOURCE} + {override_source}"
    return settings_from_dict(merged, source)


def settings_from_dict(data: dict[str, Any], source: str = "<dict>") -> RuleSettings:
    """Build settings from a complete nested dict (every section and key present)."""
    try:
        return _build(RuleSettings, data, source, prefix="")
    except SettingsError:
        raise
    except ValueError as exc:  # from _check_values
        raise SettingsError(f"{source}: {exc}") from exc


def with_changes(settings: RuleSettings, **sections: dict[str, Any]) -> RuleSettings:
    """A copy with some keys changed, e.g. `with_changes(s, consensus={"vote_cap": 5})`."""
    data = settings_to_dict(settings)
    _merge(data, sections, "with_changes", prefix="")
    return settings_from_dict(data, settings.source)


def settings_to_dict(settings: RuleSettings) -> dict[str, Any]:
    data = dataclasses.asdict(settings)
    data.pop("source")
    return data


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{source} is not valid TOML: {exc}") from exc


def _merge(base: dict[str, Any], extra: dict[str, Any], source: str, prefix: str) -> None:
    for key, value in extra.items():
        name = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base)) or "none"
            raise SettingsError(f"{source}: unknown setting '{name}' (known here: {known})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise SettingsError(f"{source}: '{name}' must be a [section] table")
            _merge(base[key], value, source, prefix=f"{name}.")
        else:
            base[key] = value


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: '{where}' must be a [section] table")
    hints = get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name != "source"]
    names = {f.name for f in fields}
    for key in data:
        if key not in names:
            known = ", ".join(sorted(names))
            raise SettingsError(
                f"{source}: unknown setting '{prefix}{key}' (known in {where}: {known})"
            )
    values: dict[str, Any] = {}
    for f in fields:
        name = f"{prefix}{f.name}"
        if f.name not in data:
            raise SettingsError(f"{source}: missing setting '{name}'")
        kind = hints[f.name]
        value = data[f.name]
        if dataclasses.is_dataclass(kind):
            values[f.name] = _build(kind, value, source, prefix=f"{name}.")  # type: ignore[arg-type]
        else:
            values[f.name] = _coerce(kind, value, source, name)
    if cls is RuleSettings:
        values["source"] = source
    return cls(**values)


def _coerce(kind: Any, value: Any, source: str, name: str) -> Any:
    # bool is a subclass of int in Python; a `true` where a number belongs is a mistake.
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    expected = {bool: "true or false", int: "an integer", float: "a number"}[kind]
    raise SettingsError(f"{source}: '{name}' must be {expected}, not {value!r}")


def _check_values(s: RuleSettings) -> None:
    """Refuse values that would make the rules meaningless, naming the key."""

    def require(ok: bool, name: str, what: str) -> None:
        if not ok:
            raise ValueError(f"'{name}' {what}")

    def probability(name: str, value: float) -> None:
        require(0.0 < value < 1.0, name, f"must be strictly between 0 and 1, not {value}")

    for section in (
        "scoring",
        "leaderboard",
        "chart",
        "retrain",
        "gold",
        "consensus",
        "collusion",
        "trust",
        "accounts",
        "challenges",
    ):
        for key, value in dataclasses.asdict(getattr(s, section)).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                require(value >= 0, f"{section}.{key}", f"must not be negative, not {value}")
    r, c, k, g = s.reliability, s.consensus, s.collusion, s.gold
    require(r.prior_correct > 0, "reliability.prior_correct", "must be positive")
    require(r.prior_wrong > 0, "reliability.prior_wrong", "must be positive")
    require(r.confusion_prior_strength > 0, "reliability.confusion_prior_strength", "must be > 0")
    require(r.confusion_min_gold >= 0, "reliability.confusion_min_gold", "must not be negative")
    probability("reliability.min_reliability", r.min_reliability)
    require(r.max_likelihood_ratio > 1.0, "reliability.max_likelihood_ratio", "must be above 1")
    probability("consensus.verify_threshold", c.verify_threshold)
    probability("consensus.reject_threshold", c.reject_threshold)
    probability("consensus.model_prior", c.model_prior)
    require(
        c.reject_threshold < c.verify_threshold,
        "consensus.reject_threshold",
        "must be below consensus.verify_threshold",
    )
    require(c.min_trusted_voters >= 1, "consensus.min_trusted_voters", "must be at least 1")
    require(
        c.vote_cap >= c.min_trusted_voters + c.dissent_extra_voters,
        "consensus.vote_cap",
        "must leave room for min_trusted_voters + dissent_extra_voters",
    )
    require(
        s.scoring.validation_round_cap < s.scoring.fool_base_points,
        "scoring.validation_round_cap",
        "must be below scoring.fool_base_points: a round is won by fooling, not by validating",
    )
    require(s.chart.min_attempts >= 1, "chart.min_attempts", "must be at least 1")
    t = s.trust
    require(t.established_evidence >= 1, "trust.established_evidence", "must be at least 1")
    require(0.0 < t.min_weight <= 1.0, "trust.min_weight", "must be in (0, 1]")
    require(
        t.min_established_voters >= 2,
        "trust.min_established_voters",
        "must be at least 2: one account alone never verifies (mark moderators for small games)",
    )
    probability("trust.oracle_follow_share", t.oracle_follow_share)
    require(0.0 <= t.learning_gold_rate < 1.0, "trust.learning_gold_rate", "must be in [0, 1)")
    acc = s.accounts
    require(acc.per_address_burst >= 1, "accounts.per_address_burst", "must be at least 1")
    require(acc.overall_burst >= 1, "accounts.overall_burst", "must be at least 1")
    require(acc.per_address_per_hour > 0, "accounts.per_address_per_hour", "must be positive")
    require(acc.overall_per_minute > 0, "accounts.overall_per_minute", "must be positive")
    require(k.drawer_prior_verified > 0, "collusion.drawer_prior_verified", "must be positive")
    require(k.drawer_prior_rejected > 0, "collusion.drawer_prior_rejected", "must be positive")
    require(0.0 <= g.rate < 1.0, "gold.rate", "must be in [0, 1)")
    probability("gold.settled_gold_posterior", g.settled_gold_posterior)
    require(0.0 <= g.probation_claim_rate <= 1.0, "gold.probation_claim_rate", "must be in [0, 1]")
    require(0.0 <= g.settled_share <= 1.0, "gold.settled_share", "must be in [0, 1]")
    require(g.assignment_pool >= 1, "gold.assignment_pool", "must be at least 1")
    require(g.lease_seconds > 0, "gold.lease_seconds", "must be positive")
    require(s.leaderboard.top_n >= 1, "leaderboard.top_n", "must be at least 1")
    require(
        0.0 <= s.retrain.heldout_fraction < 1.0, "retrain.heldout_fraction", "must be in [0, 1)"
    )
    percent = s.retrain.heldout_fraction * 100
    require(
        abs(percent - round(percent)) < 1e-9,
        "retrain.heldout_fraction",
        "must be a whole percentage (0.2, 0.15, …): held-out drawings are picked by percent",
    )
    require(s.retrain.new_verified_threshold >= 1, "retrain.new_verified_threshold", "must be >= 1")
    require(s.retrain.min_train_drawings >= 1, "retrain.min_train_drawings", "must be >= 1")
