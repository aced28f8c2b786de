"""Class names and colours: the `ClassInfo` record and its JSON / text file reader."""

from __future__ import annotations

import json
import os
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segaudit._validation import param_error

__all__ = ["ClassInfo", "read_class_names"]

Color = tuple[int, int, int]
_FUNC = "ClassInfo"
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist = 3, 60, 60, 6


def _short(value: object) -> str:
    """``repr`` cut short: a few items, three levels, 60 characters a string."""
    return _REPR.repr(value)


@dataclass(frozen=True)
class ClassInfo:
    """Names, and optionally display colours, of the K classes; class id ``k`` is ``names[k]``.

    Parameters
    ----------
    names : sequence of str
        One unique, non-empty name per class, in class-id order.
    colors : sequence of (r, g, b), optional
        One colour per class, each channel an int in ``0..255``.

    Examples
    --------
    >>> info = ClassInfo(["background", "cat"], colors=[(0, 0, 0), (128, 0, 0)])
    >>> info.num_classes, info.colors[1]
    (2, (128, 0, 0))
    >>> ClassInfo(["cat", "cat"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: The 'names' parameter of ClassInfo must be unique. Got 'cat' twice (ids 0 and 1)...
    """

    names: tuple[str, ...]
    colors: tuple[Color, ...] | None = None

    def __post_init__(self) -> None:
        names = _check_names(self.names)
        colors = None if self.colors is None else _check_colors(self.colors, len(names))
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "colors", colors)

    @property
    def num_classes(self) -> int:
        """Number of classes K."""
        return len(self.names)


def _check_names(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence) or len(names) == 0:
        raise param_error("names", _FUNC, "a non-empty sequence of str", _short(names))
    seen: dict[str, int] = {}
    for k, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            got = f"{_short(name)} for class id {k}"
            raise param_error("names", _FUNC, "a sequence of non-empty strings", got)
        if name in seen:
            got = f"{_short(name)} twice (ids {seen[name]} and {k})"
            raise param_error("names", _FUNC, "unique", got)
        seen[name] = k
    return tuple(names)


def _check_colors(colors: Sequence[Sequence[int]], k: int) -> tuple[Color, ...]:
    if isinstance(colors, str) or not isinstance(colors, Sequence):
        expected = "a sequence of [r, g, b] or None"
        raise param_error("colors", _FUNC, expected, _short(colors))
    if len(colors) != k:
        expected = f"a sequence of one colour per class ({k})"
        raise param_error("colors", _FUNC, expected, f"{len(colors)} colours")
    return tuple(_check_color(c, i) for i, c in enumerate(colors))


def _check_color(color: Any, k: int) -> Color:
    ok = (
        isinstance(color, (list, tuple))
        and len(color) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in color)
    )
    if not ok:
        expected = "[r, g, b] ints in 0..255"
        raise param_error("colors", _FUNC, expected, f"{_short(color)} for class id {k}")
    return (color[0], color[1], color[2])


def read_class_names(path: str | os.PathLike[str]) -> ClassInfo:
    r"""Read class names (and colours, if given) from a JSON or plain-text file.

    Parameters
    ----------
    path : str or PathLike
        A ``.json`` file holding one of

        - a list of names: ``["background", "aeroplane", ...]``;
        - a list of objects ``{"name": ..., "color": [r, g, b]}``, optionally with an
          ``"id"`` (objects without one take their list position);
        - an object mapping id to name or to such an object: ``{"0": "background"}``.

        Ids must cover ``0..K-1`` exactly once; other keys (e.g. ``"trainId"``) are
        ignored; colours must be given for every class or for none. Any other suffix
        is read as text: one name per line, blank lines and ``#`` comments ignored.

    Returns
    -------
    ClassInfo
        The names in class-id order, and the colours or None.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not UTF-8, not valid JSON (or nested too deep, or with a key
        twice in one object), or does not describe K unique, gap-free classes with
        string names and colours in ``0..255``; the message names the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "classes.txt"
    >>> _ = p.write_text("# VOC\nbackground\n\naeroplane  # id 1\n")
    >>> read_class_names(p).names
    ('background', 'aeroplane')
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: expected UTF-8 text; {exc.reason} at byte {exc.start}.") from exc
    if path.suffix.lower() != ".json":
        names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        names = [name for name in names if name]
        if not names:
            raise ValueError(f"{path}: expected one class name per line, found none.")
        return _class_info(names, None, path)
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
        ) from exc
    except RecursionError:
        raise ValueError(
            f"{path}: expected a JSON list or object of class names; got JSON nested too "
            "deep to read."
        ) from None
    except _DuplicateKey as exc:
        raise ValueError(
            f"{path}: expected each key once in a JSON object; got {_short(exc.key)} twice."
        ) from None
    if isinstance(data, dict):
        entries = [(_parse_id(key, path), value) for key, value in data.items()]
    elif isinstance(data, list):
        entries = [
            (_parse_id(v["id"], path) if isinstance(v, dict) and "id" in v else i, v)
            for i, v in enumerate(data)
        ]
    else:
        raise ValueError(
            f"{path}: expected a JSON list of names, a list of objects or an object mapping "
            f"id to name; got a JSON {type(data).__name__}."
        )
    if not entries:
        kind = type(data).__name__
        raise ValueError(f"{path}: expected at least one class; got an empty JSON {kind}.")
    return _from_entries(entries, path)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _parse_id(value: Any, path: Path) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    raise ValueError(
        f"{path}: expected class ids to be non-negative integers; got {_short(value)}."
    )


def _from_entries(entries: list[tuple[int, Any]], path: Path) -> ClassInfo:
    by_id: dict[int, Any] = {}
    for k, value in entries:
        if k in by_id:
            raise ValueError(f"{path}: expected each class id once; got id {k} twice.")
        by_id[k] = value
    missing = sorted(set(range(len(by_id))) - set(by_id))
    if missing:
        raise ValueError(
            f"{path}: expected class ids 0..{len(by_id) - 1} without gaps; id {missing[0]} is "
            f"missing (ids given: {sorted(by_id)[:10]})."
        )
    names: list[str] = []
    colors: list[Any] = []
    for k in range(len(by_id)):
        value = by_id[k]
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise ValueError(
                f"{path}: expected class id {k} to be a name or an object with a string "
                f"'name'; got {_short(value)}."
            )
        names.append(value["name"])
        colors.append(value.get("color"))
    given = [c is not None for c in colors]
    if any(given) and not all(given):
        k = given.index(False)
        raise ValueError(
            f"{path}: expected a 'color' for every class or for none; class id {k} "
            f"({names[k]!r}) has none."
        )
    return _class_info(names, colors if all(given) else None, path)


def _class_info(names: list[str], colors: list[Any] | None, path: Path) -> ClassInfo:
    try:
        return ClassInfo(tuple(names), colors=None if colors is None else tuple(colors))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
