"""File input and output: readers for mask/probability folders, atomic writers."""

from segaudit.io._atomic import atomic_path, atomic_write
from segaudit.io._classes import ClassInfo, read_class_names
from segaudit.io._folder import FolderDataset, FolderItem, LoadedItem
from segaudit.io._formats import read_image, read_label_mask, read_probs
from segaudit.io._problems import DatasetError, InputProblem, ItemError
from segaudit.io._publish import OutputBusyError
from segaudit.io._scan_folder import model_folders, scan_folder
from segaudit.io._space import DiskFullError

__all__ = [
    "ClassInfo",
    "DatasetError",
    "DiskFullError",
    "FolderDataset",
    "FolderItem",
    "InputProblem",
    "ItemError",
    "LoadedItem",
    "OutputBusyError",
    "atomic_path",
    "atomic_write",
    "model_folders",
    "read_class_names",
    "read_image",
    "read_label_mask",
    "read_probs",
    "scan_folder",
]
