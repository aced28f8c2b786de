"""Turn the ids stored in mask files into class ids: label maps, reduce-zero-label, colours."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segaudit._typing import IntArray
from segaudit._validation import param_error
from segaudit.io._datasets import BUILTIN_LABEL_MAPS, builtin_label_map

__all__ = ["LabelMapping", "read_label_map"]

Color = tuple[int, int, int]


def read_label_map(spec: str | os.PathLike[str] | Mapping[int, int]) -> dict[int, int]:
    r"""Return a map of raw mask ids to class ids, from a file, a built-in name or a mapping.

    Parameters
    ----------
    spec : str, PathLike or mapping
        ``"cityscapes"`` (see `builtin_label_map`); a mapping ``{raw: class}``;
        a ``.json`` file holding an object ``{"7": 0, "8": 1, ...}``; or a text
        file with one ``raw class`` pair a line (separated by a space, a comma
        or a colon; ``#`` starts a comment). A raw id mapped to null (JSON) or
        left out becomes the ignore index.

    Raises
    ------
    ValueError
        If the file is malformed, naming the file and the line.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "map.txt"
    >>> _ = p.write_text("# raw class\n7 0\n8, 1\n")
    >>> read_label_map(p)
    {7: 0, 8: 1}
    """
    pairs: list[tuple[object, object]]
    if isinstance(spec, Mapping):
        pairs = list(spec.items())
        where = "label_map"
    elif isinstance(spec, str) and spec in BUILTIN_LABEL_MAPS and not Path(spec).exists():
        return builtin_label_map(spec)
    else:
        path = Path(spec)
        where = str(path)
        text = path.read_text(encoding="utf-8-sig")
        pairs = (
            _json_pairs(text, path) if path.suffix.lower() == ".json" else _text_pairs(text, path)
        )
    out: dict[int, int] = {}
    for raw, value in pairs:
        raw_id, class_id = _as_id(raw, where), None if value is None else _as_id(value, where)
        if raw_id in out:
            raise ValueError(f"{where}: expected each raw id once; got {raw_id} twice.")
        if class_id is not None:
            out[raw_id] = class_id
    return out


def _as_id(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():
        return int(value)
    raise ValueError(f"{where}: expected integer label ids; got {value!r}.")


def _json_pairs(text: str, path: Path) -> list[tuple[object, object]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from exc
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ValueError(f"{path}: expected a JSON object mapping raw id to class id; got {kind}.")
    return list(data.items())


def _text_pairs(text: str, path: Path) -> list[tuple[object, object]]:
    pairs: list[tuple[object, object]] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].replace(",", " ").replace(":", " ").split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"{path}, line {number}: expected 'raw_id class_id'; got {line!r}.")
        pairs.append((fields[0], fields[1]))
    return pairs


@dataclass(frozen=True)
class LabelMapping:
    """How the values stored in a mask become class ids, applied as each mask is read.

    In order: colour pixels become ids through `palette` (a colour that is not
    in it becomes `ignore_index`); then `label_map` maps raw ids (ids left out
    become `ignore_index`); then `reduce_zero_label` makes 0 the ignore index
    and ``k`` into ``k - 1`` (ADE20K), keeping `ignore_index` as it is.

    Parameters
    ----------
    label_map : mapping of int to int, optional
    reduce_zero_label : bool, default=False
    ignore_index : int, optional
        Required by `label_map` and `reduce_zero_label`.
    palette : sequence of (r, g, b), optional
        Colour of class id ``k`` at position ``k``, for RGB masks.

    Examples
    --------
    >>> m = LabelMapping(reduce_zero_label=True, ignore_index=255)
    >>> m.apply(np.array([[0, 1, 150, 255]], np.uint8))
    array([[255,   0, 149, 255]], dtype=uint8)
    >>> LabelMapping({7: 0, 26: 13}, ignore_index=255).apply(np.array([[7, 26, 3]], np.uint8))
    array([[  0,  13, 255]], dtype=uint8)
    """

    label_map: Mapping[int, int] | None = None
    reduce_zero_label: bool = False
    ignore_index: int | None = None
    palette: Sequence[Color] | None = None

    def __post_init__(self) -> None:
        if (self.label_map is not None or self.reduce_zero_label) and self.ignore_index is None:
            what = "label_map" if self.label_map is not None else "reduce_zero_label"
            raise param_error(
                "ignore_index",
                "scan_folder",
                f"an int with {what}, for the pixels it makes void (e.g. 255)",
                None,
            )

    @property
    def maps_ids(self) -> bool:
        """Whether stored ids are changed (a label map or reduce-zero-label)."""
        return self.label_map is not None or self.reduce_zero_label

    def apply(self, raw: np.ndarray) -> IntArray:
        """Return the class ids of a mask of stored ids ((H, W)); `raw` is not modified."""
        if not self.maps_ids:
            return raw
        if raw.dtype == np.uint8:  # one table for every possible value: no sort
            values, inverse = np.arange(256), raw
        else:
            values, inverse = np.unique(raw, return_inverse=True)
        mapped = np.array([self._one(int(v)) for v in values], dtype=np.int64)
        top = max(int(mapped.max(initial=0)), int(self.ignore_index or 0))
        low = int(mapped.min(initial=0))
        unsigned = np.uint8 if top <= 255 else np.uint16 if top < 65536 else np.int32
        dtype = unsigned if low >= 0 else np.int32
        out: IntArray = mapped.astype(dtype)[inverse.reshape(raw.shape)]
        return out

    def _one(self, v: int) -> int:
        ignore = int(self.ignore_index)  # type: ignore[arg-type]  # checked in __post_init__
        if self.label_map is not None:
            v = self.label_map.get(v, ignore)
        if self.reduce_zero_label and v != ignore:
            v = ignore if v == 0 else v - 1
        return v

    def colors_to_ids(self, rgb: np.ndarray) -> tuple[IntArray, list[Color]]:
        """Return the class ids of an (H, W, 3) colour mask, and the colours not in `palette`.

        Unknown colours become `ignore_index` (0 when there is none; the caller
        refuses the mask then).
        """
        palette = self.palette or ()
        packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8)
        packed |= rgb[..., 2]
        values, inverse = np.unique(packed, return_inverse=True)
        lookup = {
            (r << 16) | (g << 8) | b: k for k, (r, g, b) in reversed(list(enumerate(palette)))
        }
        fallback = self.ignore_index if self.ignore_index is not None else 0
        ids = np.array([lookup.get(int(v), fallback) for v in values], dtype=np.int64)
        unknown = [
            (int(v) >> 16, (int(v) >> 8) & 255, int(v) & 255)
            for v in values
            if int(v) not in lookup
        ]
        top = max(int(ids.max(initial=0)), 0)
        dtype = np.uint8 if top <= 255 else np.int32
        return ids.astype(dtype)[inverse.reshape(packed.shape)], unknown
