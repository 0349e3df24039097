"""Where runtime state lives: one data directory holding the MNIST cache, models and database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "FTM_DATA_DIR"
DATABASE_URL_ENV = "FTM_DATABASE_URL"
DEFAULT_DATA_DIR = Path("data")


def resolve_data_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """`--data-dir` wins, then `$FTM_DATA_DIR`, then `./data`. The directory is created."""
    raw = cli_value if cli_value is not None else os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    path = Path(raw).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class DataLayout:
    """The files inside a data directory, named in one place."""

    root: Path

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
        """The embedded SQLite database, used unless `$FTM_DATABASE_URL` names another."""
        return self.root / "game.sqlite3"

    @property
    def database_url(self) -> str:
        """`$FTM_DATABASE_URL` (postgresql://user:password@host/db), else the SQLite file."""
        return os.environ.get(DATABASE_URL_ENV, "").strip() or f"sqlite:///{self.database}"

    @property
    def admin_token_file(self) -> Path:
        return self.root / "admin_token"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def rules_file(self) -> Path:
        """Optional game-rule overrides (game_rules/defaults.toml names); `$FTM_RULES` wins."""
        return self.root / "rules.toml"

    @property
    def pseudonym_salt(self) -> Path:
        """The secret behind the players' pseudonyms in every export (server/pseudonyms.py),
        created on first use."""
        return self.root / "export_salt"
