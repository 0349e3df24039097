"""docs/research.md documents every field the exports, the model files and the cards carry."""

from __future__ import annotations

from pathlib import Path

from server.learning.datacard import DRAWING_FIELDS, QUICKDRAW_FIELDS, VOTE_FIELDS
from server.serving.model_files import HF_CARD_FIELDS, ONNX_METADATA

DOC = Path(__file__).resolve().parents[2] / "docs" / "research.md"


def test_every_field_is_documented() -> None:
    text = DOC.read_text()
    fields = [*DRAWING_FIELDS, *QUICKDRAW_FIELDS, *VOTE_FIELDS, *ONNX_METADATA, *HF_CARD_FIELDS]
    missing = [name for name in fields if f"| `{name}` |" not in text]
    assert missing == [], f"docs/research.md misses {missing}"
