"""The ``segaudit`` command line: ``segaudit scan``, ``segaudit evaluate`` and ``segaudit demo``."""

from segaudit.cli._evaluate import EvaluateResult, run_evaluate
from segaudit.cli._main import cli, main
from segaudit.cli._scan import ScanResult, run_scan

__all__ = ["EvaluateResult", "ScanResult", "cli", "main", "run_evaluate", "run_scan"]
