"""What ``segaudit evaluate`` shows: the printed comparison and ``precision_recall.png``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from segaudit._optional import require
from segaudit.evaluate import ERROR_KINDS
from segaudit.io._atomic import atomic_path

if TYPE_CHECKING:
    from segaudit.evaluate import DetectionScores

__all__ = ["comparison_lines", "plot_precision_recall", "precision_recall_curve"]

_HEADERS = (
    ("pixel_precision", "pixel P"),
    ("pixel_recall", "pixel R"),
    ("pixel_f1", "pixel F1"),
    ("region_recall", "region R"),
    ("region_precision", "region P"),
    ("image_auprc", "image AUPRC"),
)


def _cell(value: float, width: int) -> str:
    return f"{'-' if np.isnan(value) else f'{value:.3f}':>{width}}"


def comparison_lines(comparison: pd.DataFrame, errors: pd.DataFrame, num_images: int) -> list[str]:
    """Return the printed comparison: the injected errors, one row per detector, then per kind.

    Parameters
    ----------
    comparison : pandas.DataFrame
        As in ``comparison.csv``: columns ``detector``, ``image_scores``, ``kind``
        and the metrics of :meth:`~segaudit.evaluate.DetectionScores.table`.
    errors : pandas.DataFrame
        As in ``errors.csv``.
    num_images : int
        Images evaluated.
    """
    counts = errors["kind"].value_counts()
    kinds = [k for k in ERROR_KINDS if k in counts]
    overall = comparison[comparison["kind"] == "all"]
    with_errors = errors["image"].nunique()
    lines = [
        f"  {'images':<22} {num_images}",
        f"  {'injected errors':<22} {len(errors)} ({', '.join(f'{k} {counts[k]}' for k in kinds)})",
        f"  {'corrupted pixels':<22} {int(errors['area'].sum())}",
        f"  {'images with errors':<22} {with_errors} "
        f"(image AUPRC of random scores: {with_errors / num_images:.3f})",
        "",
        f"{'detector':<18} {'image scores':<16} "
        + "  ".join(f"{h:>{max(len(h), 8)}}" for _, h in _HEADERS),
    ]
    for row in overall.itertuples(index=False):
        cells = "  ".join(_cell(getattr(row, c), max(len(h), 8)) for c, h in _HEADERS)
        lines.append(f"{row.detector:<18} {row.image_scores:<16} {cells}")
    lines += [
        "",
        "Region recall by error kind (an error is found when half its pixels are flagged):",
        f"{'detector':<18} " + " ".join(f"{k:>9}" for k in kinds),
    ]
    table = comparison.set_index(["detector", "kind"])["region_recall"]
    for detector in overall["detector"]:
        row = [table.loc[(detector, k)] for k in kinds]
        lines.append(f"{detector:<18} " + " ".join(_cell(v, 9) for v in row))
    return lines


def precision_recall_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Recall and precision of "score below t" for "positive", at every distinct score t.

    Lower scores come first (a label quality score: lower = more likely wrong);
    tied scores form one threshold, as in
    :func:`~segaudit.evaluate.average_precision`. Empty arrays without a positive.

    Examples
    --------
    >>> r, p = precision_recall_curve(np.array([True, False, True]), np.array([0.1, 0.5, 0.9]))
    >>> r.tolist(), p.tolist()
    ([0.5, 0.5, 1.0], [1.0, 0.5, 0.6666666666666666])
    """
    y = np.asarray(positive, dtype=bool)
    if not y.any():
        return np.empty(0), np.empty(0)
    order = np.argsort(scores, kind="stable")
    s, y = np.asarray(scores, dtype=np.float64)[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(y)[last]
    return tp / tp[-1], tp / (last + 1.0)


def plot_precision_recall(
    path: Path,
    detectors: Sequence[tuple[str, str, DetectionScores, np.ndarray]],
    positive: np.ndarray,
) -> None:
    """Draw each detector's pixel and region operating points, and its image PR curve.

    `detectors` holds ``(filter_by, method, scores, image_scores)`` per detector;
    `positive` marks the images with an injected error.
    """
    require("matplotlib", "plot", "segaudit evaluate")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, (name, method, s, image_scores) in enumerate(detectors):
        color = colors[n % len(colors)]
        left.plot(
            s.pixel_recall, s.pixel_precision, "o", color=color, ms=9, label=f"{name}: pixels"
        )
        left.plot(
            s.region_recall,
            s.region_precision,
            "s",
            color=color,
            mfc="none",
            ms=9,
            label=f"{name}: regions",
        )
        recall, precision = precision_recall_curve(positive, np.nan_to_num(image_scores, nan=1.0))
        label = f"{name} ({method}): AUPRC {s.image_auprc:.3f}"
        right.step(
            np.r_[0.0, recall],
            np.r_[precision[:1], precision],
            where="pre",
            color=color,
            label=label,
        )
    share = float(np.mean(positive))
    right.axhline(share, color="grey", ls="--", lw=1, label=f"random scores ({share:.2f})")
    titles = ("pixels and regions: operating points", "images: ranked by image score")
    for ax, title in zip((left, right), titles, strict=True):
        ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
