"""The `segaudit` command asks OpenMP's idle threads to sleep; a user's setting stands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from segaudit.cli import main
from segaudit.kernels._choice import OMP_WAIT_ENV, passive_waiting


def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the variable for the test; whatever it was is restored afterwards."""
    monkeypatch.setenv(OMP_WAIT_ENV, "restored after the test")  # records the value to restore
    monkeypatch.delenv(OMP_WAIT_ENV)


def test_passive_waiting_sets_the_policy_only_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    _unset(monkeypatch)
    assert passive_waiting() is True
    assert os.environ[OMP_WAIT_ENV] == "PASSIVE"
    monkeypatch.setenv(OMP_WAIT_ENV, "active")
    assert passive_waiting() is False
    assert os.environ[OMP_WAIT_ENV] == "active"


def test_the_command_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _unset(monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert os.environ[OMP_WAIT_ENV] == "PASSIVE"


def test_a_library_import_leaves_the_environment_alone() -> None:
    env = {k: v for k, v in os.environ.items() if k != OMP_WAIT_ENV}
    code = (
        "import os, numpy as np, segaudit\n"
        "labels = np.zeros((1, 4, 4), dtype=np.int64)\n"
        "probs = np.full((1, 2, 4, 4), 0.5)\n"
        "segaudit.find_label_issues(labels, probs)\n"
        f"print({OMP_WAIT_ENV!r} in os.environ)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
