"""matplotlib figures for :func:`segaudit.display_issues`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from segaudit._colors import class_palette, colorize
from segaudit._optional import require
from segaudit._typing import SliceableArray

if TYPE_CHECKING:  # matplotlib is optional: imported when a figure is drawn
    from matplotlib.figure import Figure

__all__ = ["plot_issues", "show_figures"]


def _pyplot() -> ModuleType:
    """``matplotlib.pyplot``, or an ImportError naming the extra."""
    return require("matplotlib.pyplot", "plot", "display_issues")


def _legend(plt: ModuleType, palette: np.ndarray, class_names: Sequence[str]) -> Figure:
    from matplotlib.patches import Patch

    fig: Figure = plt.figure(figsize=(min(2 + 1.6 * len(class_names), 20), 1.2))
    handles = [Patch(color=palette[i] / 255, label=str(n)) for i, n in enumerate(class_names)]
    fig.legend(handles=handles, loc="center", ncol=min(len(handles), 8), frameon=False)
    return fig


def plot_issues(
    issues: np.ndarray,
    labels: SliceableArray | None,
    pred_probs: SliceableArray | None,
    class_names: Sequence[str] | None,
    exclude: Sequence[int] | None,
    top: int,
    ignore_index: int | None = None,
) -> list[Figure]:
    """Draw up to `top` images with the most flagged pixels; return the figures."""
    plt = _pyplot()
    counts = issues.sum(axis=(1, 2))
    order = np.argsort(-counts, kind="stable")[: min(top, issues.shape[0])]
    if pred_probs is not None:
        k = pred_probs.shape[1]
    elif labels is not None:
        ids = np.asarray(labels)
        k = (
            int(np.max(ids[ids != ignore_index] if ignore_index is not None else ids, initial=0))
            + 1
        )
    else:
        k = 1
    palette = class_palette(max(k, len(class_names or ())))
    figures: list[Figure] = []
    if class_names is not None and (labels is not None or pred_probs is not None):
        figures.append(_legend(plt, palette, class_names))
    panels = 1 + (labels is not None) + (pred_probs is not None)
    for i in order:
        fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 5), squeeze=False)
        ax = [axes[0, j] for j in range(panels)]  # by index: also works on a mocked figure
        shown = issues[i]
        if labels is not None:
            given = np.asarray(labels[i])
            a = ax.pop(0)
            a.imshow(colorize(given, palette, ignore_index=ignore_index))
            a.set_title("Given labels")
            if exclude:
                shown = shown & ~np.isin(given, list(exclude))
        if pred_probs is not None:
            a = ax.pop(0)
            a.imshow(colorize(np.asarray(pred_probs[i]).argmax(axis=0), palette))
            a.set_title("Predicted (argmax)")
        overlay = np.zeros((*shown.shape, 4))
        overlay[shown] = (1.0, 0.0, 0.0, 1.0)
        a = ax.pop(0)
        a.imshow(overlay)
        a.set_title(f"Image {int(i)}: {int(shown.sum())} flagged pixels (red)")
        for a in fig.axes:
            a.set_axis_off()
        figures.append(fig)
    return figures


def show_figures(block: bool | None) -> None:
    """Call ``matplotlib.pyplot.show()``, as the reference does after drawing.

    With a non-interactive backend (Agg) matplotlib may warn that nothing can be
    shown; the figures are returned to the caller anyway, so that warning is
    dropped.
    """
    plt = _pyplot()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-interactive.*", category=UserWarning)
        if block is None:
            plt.show()
        else:
            plt.show(block=block)
