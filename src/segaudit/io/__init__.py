"""File input and output: readers for mask/probability folders, atomic writers."""

from segaudit.io._atomic import atomic_path, atomic_write
from segaudit.io._classes import ClassInfo, read_class_names
from segaudit.io._readers import (
    DatasetError,
    FolderDataset,
    FolderItem,
    InputProblem,
    LoadedItem,
    read_image,
    read_label_mask,
    read_probs,
    scan_folder,
)

__all__ = [
    "ClassInfo",
    "DatasetError",
    "FolderDataset",
    "FolderItem",
    "InputProblem",
    "LoadedItem",
    "atomic_path",
    "atomic_write",
    "read_class_names",
    "read_image",
    "read_label_mask",
    "read_probs",
    "scan_folder",
]
