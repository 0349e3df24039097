"""Configuration, read once: every `FTM_*` environment variable, the data directory's files and
the game rules.

    settings = Settings.from_env(os.environ, data_dir=args.data_dir)   # in cli.py, once
    layout = settings.layout                                          # DataLayout
    rules = load_rules(layout)                                        # RuleSettings

This is the only module that reads the environment (tests/test_config.py checks it): the rest
of the server receives `Settings`, or the part of it that it needs, from the composition root,
so a test builds exactly the configuration it wants and a bad value is refused at start with
one line that names the variable. README.md "Configuration" lists every variable.

The game rules are read here too (`load_rules`): `game_rules` only parses the TOML text it is
given, and the packaged defaults come out of the `game_rules` package with importlib.resources.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any, TypeVar

from game_rules.settings import RuleSettings, SettingsError, parse_settings

DATA_DIR_ENV = "FTM_DATA_DIR"
DATABASE_URL_ENV = "FTM_DATABASE_URL"
RULES_ENV = "FTM_RULES"
HOST_ENV = "FTM_HOST"
PORT_ENV = "FTM_PORT"
ORIGINS_ENV = "FTM_ALLOWED_ORIGINS"
HOSTS_ENV = "FTM_ALLOWED_HOSTS"
REDIS_URL_ENV = "FTM_REDIS_URL"
ADMIN_TOKEN_ENV = "FTM_ADMIN_TOKEN"
TRAINER_ENV = "FTM_TRAINER"  # "external": servers queue jobs for `fool-the-model trainer`

T = TypeVar("T")

DEFAULT_DATA_DIR = Path("data")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def installed_version() -> str:
    """This release, as installed (pyproject.toml's `version`); "unknown" when run from a
    checkout that was never installed."""
    try:
        return metadata.version("fool-the-model")
    except metadata.PackageNotFoundError:
        return "unknown"


class ConfigError(ValueError):
    """A bad environment variable; the message is one line that names it and what it takes."""


def resolve_data_dir(
    cli_value: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    create: bool = True,
) -> Path:
    """`--data-dir` wins, then `$FTM_DATA_DIR`, then `./data`. A missing directory is created
    when `create`, else refused (a typo must not start an empty game); a file is refused."""
    env_value = env.get(DATA_DIR_ENV, "").strip()
    raw = cli_value if cli_value is not None else env_value
    source = "--data-dir" if cli_value is not None else DATA_DIR_ENV if env_value else "the default"
    path = Path(raw or DEFAULT_DATA_DIR).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"the data directory {path} ({source}) is a file: name a directory")
    if not path.exists() and not create:
        raise ConfigError(
            f"the data directory {path} ({source}) does not exist: check the path, or run "
            "`fool-the-model fetch-data` to start one there"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create the data directory {path} ({source}): {error.strerror}"
        ) from error
    return path


@dataclass(frozen=True)
class DataLayout:
    """The files inside a data directory, named in one place, and where its database is.

    `database_url` is fixed when the layout is made (`Settings.layout` passes
    `$FTM_DATABASE_URL`); left empty, it is the data directory's own SQLite file."""

    root: Path
    database_url: str = ""
    rules_override: Path | None = None  # `$FTM_RULES`: a rules file that wins over DATA/rules.toml

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.database}")

    @property
    def mnist_dir(self) -> Path:
        return self.root / "mnist"

    @property
    def mnist_cache(self) -> Path:
        return self.mnist_dir / "mnist.npz"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model_path(self, version: str) -> Path:
        return self.models_dir / f"{version}.onnx"

    def model_card_path(self, version: str) -> Path:
        return self.models_dir / f"{version}.json"

    @property
    def database(self) -> Path:
        """The embedded SQLite database, used unless `database_url` names another."""
        return self.root / "game.sqlite3"

    @property
    def admin_token_file(self) -> Path:
        return self.root / "admin_token"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def rules_file(self) -> Path:
        """Optional game-rule overrides (game_rules/defaults.toml names); `$FTM_RULES` wins."""
        return self.rules_override or self.root / "rules.toml"

    @property
    def pseudonym_salt(self) -> Path:
        """The secret behind the players' pseudonyms in every export (server/pseudonyms.py),
        created on first use."""
        return self.root / "export_salt"


@functools.cache
def _packaged_defaults() -> str:
    return resources.files("game_rules").joinpath("defaults.toml").read_text(encoding="utf-8")


def default_rules() -> RuleSettings:
    """The packaged game rules (game_rules/defaults.toml), nothing overridden."""
    return parse_settings(_packaged_defaults())


def load_rules(layout: DataLayout) -> RuleSettings:
    """The deployment's rules: `$FTM_RULES` if set, else `DATA/rules.toml` if present, else the
    packaged defaults. Raises `SettingsError` naming the file and the key."""
    path = layout.rules_file
    if layout.rules_override is None and not path.exists():
        return default_rules()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read rule settings file {path}: {exc}") from exc
    return parse_settings(_packaged_defaults(), text, str(path))


def _text(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list; blanks dropped."""
    return tuple(item.strip() for item in _text(env, name).split(",") if item.strip())


# The values a variable or an option (cli.py) takes: text in, the value out, or a ValueError
# that says what it takes ("must be …, got '…'"), which the caller prefixes with the name.


def port_number(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"must be a port number 1–65535, got {raw!r}")
    return int(raw)


def whole_number(raw: str) -> int:
    """A count of at least 1."""
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def seconds(raw: str) -> float:
    value = _float(raw)
    if not 0 < value < math.inf:
        raise ValueError(f"must be a positive number of seconds, got {raw!r}")
    return value


def accuracy(raw: str) -> float:
    value = _float(raw)
    if not 0 <= value <= 1:
        raise ValueError(f"must be an accuracy from 0 to 1, got {raw!r}")
    return value


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        return math.nan  # fails every range check, so the caller's message names the range


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T]) -> T | None:
    """The variable `name` parsed, None when unset or blank; ConfigError naming it if bad."""
    raw = _text(env, name)
    if not raw:
        return None
    try:
        return parse(raw)
    except ValueError as error:
        raise ConfigError(f"{name} {error}") from None


@dataclass(frozen=True)
class TrainerConfig:
    """How the learning loop trains: where (`external`) and how big a job is. `None` keeps the
    learning loop's own default (server/learning/jobs/runner.py `LearningSettings`)."""

    external: bool = False  # FTM_TRAINER=external: servers queue jobs for `fool-the-model trainer`
    epochs: int | None = None  # FTM_TRAIN_EPOCHS
    train_limit: int | None = None  # FTM_TRAIN_LIMIT: first N MNIST training digits
    test_limit: int | None = None  # FTM_TEST_LIMIT: first N MNIST test digits for the gate
    mnist_floor: float | None = None  # FTM_GATE_MNIST_FLOOR: the gate's MNIST accuracy floor
    threads: int | None = None  # FTM_TRAINER_THREADS
    timeout_seconds: float | None = None  # FTM_TRAINER_TIMEOUT
    poll_seconds: float | None = None  # FTM_RETRAIN_POLL_SECONDS: the automatic trigger's period
    heartbeat_timeout: float | None = None  # FTM_TRAINER_HEARTBEAT_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TrainerConfig:
        mode = _text(env, TRAINER_ENV)
        if mode not in ("", "process", "external"):
            raise ConfigError(
                f"{TRAINER_ENV} is 'external' (servers queue jobs for `fool-the-model trainer`) "
                f"or empty (each server trains in a child process), got {mode!r}"
            )
        return cls(
            external=mode == "external",
            epochs=_read(env, "FTM_TRAIN_EPOCHS", whole_number),
            train_limit=_read(env, "FTM_TRAIN_LIMIT", whole_number),
            test_limit=_read(env, "FTM_TEST_LIMIT", whole_number),
            mnist_floor=_read(env, "FTM_GATE_MNIST_FLOOR", accuracy),
            threads=_read(env, "FTM_TRAINER_THREADS", whole_number),
            timeout_seconds=_read(env, "FTM_TRAINER_TIMEOUT", seconds),
            poll_seconds=_read(env, "FTM_RETRAIN_POLL_SECONDS", seconds),
            heartbeat_timeout=_read(env, "FTM_TRAINER_HEARTBEAT_TIMEOUT", seconds),
        )

    def overrides(self) -> dict[str, Any]:
        """The job sizes that were set, by field name (for `dataclasses.replace`)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "external" and getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one process, fixed at start."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""  # empty: the data directory's SQLite file
    rules_file: Path | None = None  # FTM_RULES: wins over DATA/rules.toml
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    allowed_origins: tuple[str, ...] = ()  # browser Origins let in besides the server's own
    allowed_hosts: tuple[str, ...] = ()  # Host names served; empty: the local defaults
    redis_url: str = ""  # empty: in-process pub/sub
    admin_token: str = ""  # empty: DATA/admin_token, generated on first start
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] = os.environ,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        host: str | None = None,
        port: int | None = None,
        create_data_dir: bool = True,
    ) -> Settings:
        """Every `FTM_*` variable of `env`; the command line's values (when given) win. Raises
        `ConfigError` for a bad value. Creates a missing data directory if `create_data_dir`."""
        rules = _text(env, RULES_ENV)
        return cls(
            data_dir=resolve_data_dir(data_dir, env, create=create_data_dir),
            database_url=_text(env, DATABASE_URL_ENV),
            rules_file=Path(rules).expanduser() if rules else None,
            host=host or _text(env, HOST_ENV) or DEFAULT_HOST,
            port=port if port is not None else _read(env, PORT_ENV, port_number) or DEFAULT_PORT,
            allowed_origins=_names(env, ORIGINS_ENV),
            allowed_hosts=_names(env, HOSTS_ENV),
            redis_url=_text(env, REDIS_URL_ENV),
            admin_token=_text(env, ADMIN_TOKEN_ENV),
            trainer=TrainerConfig.from_env(env),
        )

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir, self.database_url, self.rules_file)
