"""File input and output: readers for mask/probability folders, atomic writers."""

import typing as _typing

from segaudit._lazy import lazy_names as _lazy_names

if _typing.TYPE_CHECKING:  # imported on first use (PEP 562): the API path needs few of them
    from segaudit.io._atomic import atomic_path, atomic_write
    from segaudit.io._classes import ClassInfo, read_class_names
    from segaudit.io._datasets import builtin_classes, builtin_label_map
    from segaudit.io._folder import FolderDataset, FolderItem, LoadedItem
    from segaudit.io._formats import read_image, read_label_mask, read_probs
    from segaudit.io._labels import LabelMapping, read_label_map
    from segaudit.io._problems import DatasetError, InputProblem, ItemError
    from segaudit.io._publish import OutputBusyError
    from segaudit.io._resample import resize_bilinear
    from segaudit.io._scan_folder import model_folders, scan_folder
    from segaudit.io._space import DiskFullError
    from segaudit.io._split_probs import open_split

__all__ = [
    "ClassInfo",
    "DatasetError",
    "DiskFullError",
    "FolderDataset",
    "FolderItem",
    "InputProblem",
    "ItemError",
    "LabelMapping",
    "LoadedItem",
    "OutputBusyError",
    "atomic_path",
    "atomic_write",
    "builtin_classes",
    "builtin_label_map",
    "model_folders",
    "open_split",
    "read_class_names",
    "read_image",
    "read_label_map",
    "read_label_mask",
    "read_probs",
    "resize_bilinear",
    "scan_folder",
]

__getattr__, __dir__ = _lazy_names(
    globals(),
    {
        "atomic_path": "segaudit.io._atomic",
        "atomic_write": "segaudit.io._atomic",
        "ClassInfo": "segaudit.io._classes",
        "read_class_names": "segaudit.io._classes",
        "builtin_classes": "segaudit.io._datasets",
        "builtin_label_map": "segaudit.io._datasets",
        "LabelMapping": "segaudit.io._labels",
        "read_label_map": "segaudit.io._labels",
        "resize_bilinear": "segaudit.io._resample",
        "open_split": "segaudit.io._split_probs",
        "FolderDataset": "segaudit.io._folder",
        "FolderItem": "segaudit.io._folder",
        "LoadedItem": "segaudit.io._folder",
        "read_image": "segaudit.io._formats",
        "read_label_mask": "segaudit.io._formats",
        "read_probs": "segaudit.io._formats",
        "DatasetError": "segaudit.io._problems",
        "InputProblem": "segaudit.io._problems",
        "ItemError": "segaudit.io._problems",
        "OutputBusyError": "segaudit.io._publish",
        "model_folders": "segaudit.io._scan_folder",
        "scan_folder": "segaudit.io._scan_folder",
        "DiskFullError": "segaudit.io._space",
    },
)
