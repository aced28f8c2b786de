"""The README's Usage block runs as written, on sample files in a temporary folder."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segaudit._sample import make_sample_dataset

README = Path(__file__).resolve().parents[1] / "README.md"


def _usage_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Usage") :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match is not None, "README's Usage section has no python block"
    return match.group(1)


def test_readme_usage_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_sample_dataset(n_images=4, seed=3, void_border=2)
    np.save(tmp_path / "labels.npy", data.labels)
    np.save(tmp_path / "pred_probs.npy", data.pred_probs)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(_usage_block(), str(README), "exec"), namespace)
    issues = namespace["issues"]
    assert isinstance(issues, np.ndarray) and issues.shape == data.labels.shape
    assert issues.any() and not issues[data.labels == 255].any()
    assert isinstance(namespace["table"], pd.DataFrame) and len(namespace["table"]) > 0
    assert set(namespace["table"]["given_label"]) <= set(namespace["names"])
    assert (namespace["worst"] < len(data.labels)).all()


def test_readme_is_self_contained() -> None:
    """Docs never point outside the repository."""
    docs = [README, *sorted((README.parent / "docs").glob("*.md"))]
    for path in docs:
        assert "../shared" not in path.read_text(encoding="utf-8"), path
