"""Input problems: what is wrong with which file, and the errors that carry them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DatasetError",
    "InputProblem",
    "ItemError",
    "broken_link_message",
    "fail",
    "problem_of",
]


@dataclass(frozen=True)
class InputProblem:
    """One problem with the input files, naming the file at fault.

    Parameters
    ----------
    path : Path
        The file (or folder) at fault.
    message : str
        What was expected and what was found.
    stem : str, optional
        The item it belongs to; None when it concerns no single item (an empty folder).
    """

    path: Path
    message: str
    stem: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class DatasetError(ValueError):
    """Input files that cannot be used; the message lists every problem, one per line.

    Parameters
    ----------
    problems : sequence of InputProblem
        Kept as the `problems` attribute.
    header : str, optional
        First line of the message; by default the number of problems.
    """

    def __init__(self, problems: Sequence[InputProblem], header: str | None = None) -> None:
        self.problems, self.header = tuple(problems), header
        lines = [str(p) for p in self.problems]
        if header is None and len(lines) == 1:
            super().__init__(lines[0])
        else:
            head = header or f"{len(lines)} input problems"
            super().__init__("\n  ".join([f"{head}:", *lines]))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems, self.header))


class ItemError(DatasetError):
    """One item could not be loaded; other items may still be fine.

    Raised by `FolderDataset.load` for a problem found while reading one item's
    files (a file corrupt past its header, removed, or changed since the scan;
    NaN, infinite or negative probabilities). The message is ``"<file>: <reason>"``.

    Parameters
    ----------
    problem : InputProblem
        Kept as the `problem` attribute (and as ``problems[0]``), with its `stem`.
    """

    def __init__(self, problem: InputProblem) -> None:
        super().__init__([problem])

    @property
    def problem(self) -> InputProblem:
        """The one problem: file, reason and the item's stem."""
        return self.problems[0]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems[0],))


def fail(path: Path, message: str, stem: str | None = None) -> DatasetError:
    """Return a `DatasetError` holding the single problem ``path: message``."""
    return DatasetError([InputProblem(path, message, stem)])


def problem_of(exc: DatasetError | OSError, path: Path, stem: str) -> InputProblem:
    """Turn a reader's error into the problem of item `stem`, naming `path`."""
    if isinstance(exc, DatasetError):
        return InputProblem(exc.problems[0].path, exc.problems[0].message, stem)
    if isinstance(exc, FileNotFoundError):
        if path.is_symlink():
            return InputProblem(path, broken_link_message(path), stem)
        return InputProblem(path, "the file does not exist (any more).", stem)
    reason = exc.strerror or str(exc)
    return InputProblem(path, f"cannot read the file ({reason}).", stem)


def broken_link_message(path: Path) -> str:
    """Describe a symbolic link whose target does not exist."""
    try:
        target = str(Path(path).readlink())
    except OSError:  # pragma: no cover - raced away
        target = "?"
    return f"broken symbolic link: its target {target!r} does not exist."
