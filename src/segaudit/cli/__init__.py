"""The ``segaudit`` command line: ``segaudit scan`` and ``segaudit demo``."""

from segaudit.cli._main import cli, main
from segaudit.cli._scan import ScanResult, run_scan

__all__ = ["ScanResult", "cli", "main", "run_scan"]
