"""``segaudit demo``: write the sample dataset as real files, scan it, and score the scan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from segaudit._colors import class_palette, colorize
from segaudit._sample import SampleDataset, make_sample_dataset
from segaudit._validation import param_error
from segaudit.io._atomic import atomic_path, atomic_write

__all__ = ["claim_demo_folder", "precision_recall", "read_flagged", "sample", "write_sample_folder"]

VOID = 255
MARKER = ".segaudit-demo"


def claim_demo_folder(out_dir: Path) -> None:
    """Create `out_dir` for the demo, or accept it if empty or an earlier demo's.

    The demo writes ``sample/``, ``scan/`` and ``top_issues.png`` there; a marker
    file records that the folder is the demo's, so user files are never overwritten.

    Raises
    ------
    ValueError
        If `out_dir` is a file, or a folder with other content and no marker.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise param_error("out", "segaudit demo", "a folder", f"the file '{out_dir}'")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise param_error(
            "out",
            "segaudit demo",
            "a new or empty folder, or one an earlier demo wrote",
            f"'{out_dir}', which holds other files",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("written by `segaudit demo`\n", encoding="utf-8")


def write_sample_folder(root: Path, data: SampleDataset) -> dict[str, Path]:
    """Write masks (palette PNG, 255 void), float16 logits (``.npz``), images and classes.

    Returns
    -------
    dict
        Paths of the ``masks``, ``probs`` and ``images`` folders and ``classes`` file.
    """
    from PIL import Image

    paths = {name: root / name for name in ("masks", "probs", "images")}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    palette = class_palette(len(data.class_names))
    flat_palette = np.zeros((256, 3), dtype=np.uint8)
    flat_palette[: len(palette)] = palette
    flat_palette[VOID] = (255, 255, 255)
    rng = np.random.default_rng(1)
    for i in range(data.labels.shape[0]):
        stem = f"scene_{i:03d}"
        mask = Image.fromarray(data.labels[i].astype(np.uint8))
        mask.putpalette(flat_palette.reshape(-1).tolist())
        with atomic_path(paths["masks"] / f"{stem}.png") as tmp:
            mask.save(tmp, format="PNG")
        with atomic_path(paths["probs"] / f"{stem}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, logits=data.logits[i].astype(np.float16))
        truth = colorize(data.true_labels[i], palette, ignore_index=VOID).astype(np.int16)
        photo = np.clip(truth + rng.normal(0, 18, truth.shape), 0, 255).astype(np.uint8)
        with atomic_path(paths["images"] / f"{stem}.png") as tmp:
            Image.fromarray(photo).save(tmp, format="PNG")
    classes = [
        {"id": k, "name": name, "color": [int(c) for c in palette[k]]}
        for k, name in enumerate(data.class_names)
    ]
    paths["classes"] = root / "classes.json"
    with atomic_write(paths["classes"]) as fh:
        json.dump(classes, fh, indent=1)
    return paths


def read_flagged(mask_dir: Path, stems: list[str], shape: tuple[int, int]) -> np.ndarray:
    """Stack the issue-mask PNGs a scan wrote (absent file: no issue) into (N, H, W)."""
    from PIL import Image

    out = np.zeros((len(stems), *shape), dtype=np.bool_)
    for i, stem in enumerate(stems):
        path = mask_dir / f"{stem}.png"
        if path.exists():
            out[i] = np.asarray(Image.open(path)) > 0
    return out


def precision_recall(flagged: np.ndarray, injected: np.ndarray) -> tuple[float, float]:
    """Share of flagged pixels that were injected errors, and of injected errors flagged."""
    hits = int(np.count_nonzero(flagged & injected))
    return hits / max(int(flagged.sum()), 1), hits / max(int(injected.sum()), 1)


def sample(n_images: int, seed: int) -> SampleDataset:
    """Make the demo's dataset: street-like scenes with a void frame, as in Cityscapes."""
    return make_sample_dataset(n_images=n_images, seed=seed, void_border=2)
