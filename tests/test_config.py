"""Configuration is read once, in one place: `server/config.py` turns the `FTM_*` environment
into a frozen `Settings`, refuses a bad value with one line naming the variable, and is the
only module that reads those variables; README.md's table lists exactly the ones it reads."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from server.cli import main
from server.config import ConfigError, DataLayout, Settings, TrainerConfig

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "server" / "config.py"
VARIABLE = re.compile(r"FTM_[A-Z0-9_]+")


class RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every name it was asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def variables_read(tmp_path: Path) -> set[str]:
    env = RecordingEnv()
    Settings.from_env(env, data_dir=tmp_path)
    Settings.from_env(env)  # without --data-dir, FTM_DATA_DIR is asked too
    return env.asked


def readme_table() -> set[str]:
    """The variables named in the first column of README.md's "Configuration" table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {row.split("`")[1] for row in rows}


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == tmp_path / "data" and settings.data_dir.is_dir()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.allowed_origins == settings.allowed_hosts == ()
    assert (settings.redis_url, settings.admin_token, settings.rules_file) == ("", "", None)
    assert settings.trainer == TrainerConfig()
    assert settings.layout.database_url == f"sqlite:///{tmp_path / 'data' / 'game.sqlite3'}"


def test_every_variable_is_read(tmp_path: Path) -> None:
    env = {
        "FTM_DATA_DIR": str(tmp_path / "elsewhere"),
        "FTM_DATABASE_URL": " postgresql://ftm@db:5432/ftm ",
        "FTM_RULES": str(tmp_path / "rules.toml"),
        "FTM_HOST": "0.0.0.0",
        "FTM_PORT": "8080",
        "FTM_ALLOWED_ORIGINS": "https://a.example, ,https://b.example",
        "FTM_ALLOWED_HOSTS": "game.example,localhost",
        "FTM_REDIS_URL": "redis://redis:6379/0",
        "FTM_ADMIN_TOKEN": "secret",
        "FTM_TRAINER": "external",
        "FTM_TRAIN_EPOCHS": "3",
        "FTM_TRAIN_LIMIT": "1000",
        "FTM_TEST_LIMIT": "500",
        "FTM_GATE_MNIST_FLOOR": "0.5",
        "FTM_TRAINER_THREADS": "4",
        "FTM_TRAINER_TIMEOUT": "60",
        "FTM_RETRAIN_POLL_SECONDS": "0.5",
        "FTM_TRAINER_HEARTBEAT_TIMEOUT": "3",
    }
    settings = Settings.from_env(env)
    assert settings == Settings(
        data_dir=tmp_path / "elsewhere",
        database_url="postgresql://ftm@db:5432/ftm",
        rules_file=tmp_path / "rules.toml",
        host="0.0.0.0",
        port=8080,
        allowed_origins=("https://a.example", "https://b.example"),
        allowed_hosts=("game.example", "localhost"),
        redis_url="redis://redis:6379/0",
        admin_token="secret",
        trainer=TrainerConfig(
            external=True,
            epochs=3,
            train_limit=1000,
            test_limit=500,
            mnist_floor=0.5,
            threads=4,
            timeout_seconds=60.0,
            poll_seconds=0.5,
            heartbeat_timeout=3.0,
        ),
    )
    assert settings.layout == DataLayout(
        tmp_path / "elsewhere", "postgresql://ftm@db:5432/ftm", tmp_path / "rules.toml"
    )
    assert set(env) == variables_read(tmp_path)


def test_the_command_line_wins_over_the_environment(tmp_path: Path) -> None:
    env = {"FTM_DATA_DIR": str(tmp_path / "env"), "FTM_HOST": "0.0.0.0", "FTM_PORT": "abc"}
    settings = Settings.from_env(env, data_dir=tmp_path / "cli", host="::1", port=9000)
    assert (settings.data_dir, settings.host, settings.port) == (tmp_path / "cli", "::1", 9000)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("FTM_PORT", "abc", "FTM_PORT must be a port number 1–65535, got 'abc'"),
        ("FTM_PORT", "0", "FTM_PORT must be a port number 1–65535, got '0'"),
        ("FTM_PORT", "70000", "FTM_PORT must be a port number 1–65535, got '70000'"),
        ("FTM_TRAIN_EPOCHS", "0", "FTM_TRAIN_EPOCHS must be a whole number of at least 1"),
        ("FTM_TRAIN_LIMIT", "many", "FTM_TRAIN_LIMIT must be a whole number of at least 1"),
        ("FTM_TEST_LIMIT", "2.5", "FTM_TEST_LIMIT must be a whole number of at least 1"),
        ("FTM_TRAINER_THREADS", "-2", "FTM_TRAINER_THREADS must be a whole number"),
        ("FTM_GATE_MNIST_FLOOR", "1.5", "FTM_GATE_MNIST_FLOOR must be an accuracy from 0 to 1"),
        ("FTM_TRAINER_TIMEOUT", "-1", "FTM_TRAINER_TIMEOUT must be a positive number of seconds"),
        ("FTM_RETRAIN_POLL_SECONDS", "0", "FTM_RETRAIN_POLL_SECONDS must be a positive number"),
        ("FTM_TRAINER_HEARTBEAT_TIMEOUT", "soon", "FTM_TRAINER_HEARTBEAT_TIMEOUT must be a"),
        ("FTM_TRAINER", "kubernetes", "FTM_TRAINER is 'external'"),
    ],
)
def test_a_bad_value_is_refused_in_one_line_naming_the_variable(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value}, data_dir=tmp_path)
    message = str(refused.value)
    assert message.startswith(expected) and "\n" not in message
    assert repr(value) in message


def test_the_cli_reports_a_bad_value_and_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FTM_PORT", "abc")
    assert main(["--data-dir", str(tmp_path), "serve"]) == 2
    assert capsys.readouterr().err == "error: FTM_PORT must be a port number 1–65535, got 'abc'\n"


def test_a_layout_keeps_the_database_it_was_made_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = DataLayout(tmp_path)
    monkeypatch.setenv("FTM_DATABASE_URL", "postgresql://ftm@db:5432/ftm")  # read by no layout
    assert layout.database_url == f"sqlite:///{tmp_path / 'game.sqlite3'}"
    assert DataLayout(tmp_path).database_url == layout.database_url
    assert DataLayout(tmp_path, "postgresql://x@y/z").database_url == "postgresql://x@y/z"
    with pytest.raises(dataclasses.FrozenInstanceError):
        layout.database_url = "sqlite:///other"  # type: ignore[misc]


def sources() -> list[Path]:
    return sorted([*REPO.glob("server/**/*.py"), *REPO.glob("game_rules/**/*.py")])


def environment_reads(path: Path) -> list[str]:
    """Where `path` names an `FTM_*` variable as a value: a string that is exactly the name
    (an environment key or a constant holding one) or an f-string that builds one."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if VARIABLE.fullmatch(node.value.strip().lstrip("$")):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and str(first.value).startswith("FTM_"):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: f-string FTM_…")
    return found


def test_only_the_config_module_reads_ftm_variables() -> None:
    outside = [read for path in sources() if path != CONFIG for read in environment_reads(path)]
    assert outside == []
    assert environment_reads(CONFIG)  # the scan does find them where they are


def test_the_readme_table_lists_exactly_the_variables_read(tmp_path: Path) -> None:
    read = variables_read(tmp_path)
    table = readme_table()
    assert sorted(read - table) == [], "read by server/config.py but missing from README.md"
    assert sorted(table - read) == [], "in README.md's table but read by nobody"


# Where a deployment or a reader meets the variables; none may name one the table lacks.
DOCUMENTS = ["README.md", "docs/*.md", "compose.yaml", "Dockerfile", "Makefile", "deploy/**/*"]
TESTS_ONLY = {"FTM_TEST_DATABASE"}  # `make test`'s switch to PostgreSQL, read by tests/server


def documents() -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in REPO.glob(pattern) if path.is_file()})


def test_every_variable_a_document_names_is_in_the_table() -> None:
    named = {
        f"{name} ({path.relative_to(REPO)})"
        for path in documents()
        for name in VARIABLE.findall(path.read_text(encoding="utf-8", errors="replace"))
        if name not in readme_table() | TESTS_ONLY
    }
    assert sorted(named) == [], "add them to README.md's Configuration table, or fix the name"


def test_the_table_is_the_only_list_of_defaults() -> None:
    rows = [
        f"{path.relative_to(REPO)}: {line.split('|')[1].strip()}"
        for path in documents()
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.startswith("| `FTM_")
    ]
    assert len(rows) == len(readme_table()), f"one table (README.md Configuration): {rows}"


def test_the_rules_open_no_files() -> None:
    io_names = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "resources"}
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in REPO.glob("game_rules/**/*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.Name) and node.id in io_names)
        or (isinstance(node, ast.Attribute) and node.attr in io_names)
        or (isinstance(node, ast.alias) and node.name.split(".")[-1] in io_names | {"os"})
    ]
    assert found == []
