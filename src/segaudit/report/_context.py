"""What every part of the report needs: class names, colours, void, and how to draw an ``<img>``."""

from __future__ import annotations

import html
import numbers

import numpy as np

from segaudit.report._image import ReportImage
from segaudit.report._render import mask_picture, png_data_uri
from segaudit.report._tables import is_missing

__all__ = ["Context", "img_tag"]

#: Long side, at most, of a region's crop.
CROP_SIDE = 192


class Context:
    """What every section needs to draw masks and name classes."""

    def __init__(
        self, names: list[str], palette: np.ndarray, ignore_index: int | None, max_side: int
    ) -> None:
        self.names = names
        self.palette = palette
        self.ignore_index = ignore_index
        self.max_side = max_side
        self.crop_side = min(max_side, CROP_SIDE)

    @property
    def void_is_class(self) -> bool:
        """Whether `ignore_index` is also a class id (void in given masks only)."""
        return self.ignore_index is not None and 0 <= self.ignore_index < len(self.names)

    def label_name(self, value: object, *, given: bool) -> str:
        """Name a class id (or pass a name through); void and missing get a word.

        `ignore_index` reads "void" in given labels; in predicted labels only when
        it is not a class id.
        """
        if is_missing(value):
            return "n/a"
        if isinstance(value, numbers.Real) and float(value).is_integer():
            label = int(float(value))
            if label == self.ignore_index and (given or not self.void_is_class):
                return "void"
            if 0 <= label < len(self.names):
                return self.names[label]
        return str(value)

    def mask_png(self, mask: np.ndarray, *, ignore_index: int | None) -> str:
        """Colourise `mask` (void: `ignore_index` and ids outside the classes) as a PNG URI."""
        return png_data_uri(
            mask_picture(mask, self.palette, ignore_index=ignore_index, max_side=self.max_side)
        )

    def given_png(self, item: ReportImage) -> str:
        """Draw the given mask as a PNG URI, void in grey."""
        return self.mask_png(item.labels, ignore_index=self.ignore_index)

    def predicted_png(self, item: ReportImage) -> str:
        """Draw the predicted mask; grey where the given one is void if void is a class id."""
        if not self.void_is_class:
            return self.mask_png(item.predicted, ignore_index=self.ignore_index)
        shown = np.where(item.labels == self.ignore_index, -1, item.predicted)
        return self.mask_png(shown, ignore_index=None)


def img_tag(
    uri: str, shape: tuple[int, ...], css: str, stem: str, alt: str, least: int, extra: str = ""
) -> str:
    """Return an ``<img>`` of a PNG URI, enlarged (whole times) to a long side >= `least`."""
    factor = max(1, least // max(shape[:2]))
    return (
        f'<img class="{css}" data-stem="{html.escape(stem)}"{extra} '
        f'alt="{html.escape(alt)}" width="{shape[1] * factor}" height="{shape[0] * factor}" '
        f'src="{uri}">'
    )
