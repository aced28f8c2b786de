"""Former home of the folder readers, kept so that old imports keep working.

The code now lives in one module per job: `_problems` (error types), `_formats`
(one file), `_folder` (`FolderDataset`) and `_scan_folder` (the up-front check).
"""

from segaudit.io._folder import FolderDataset, FolderItem, LoadedItem
from segaudit.io._formats import read_image, read_label_mask, read_probs
from segaudit.io._problems import DatasetError, InputProblem, ItemError
from segaudit.io._scan_folder import scan_folder

__all__ = [
    "DatasetError",
    "FolderDataset",
    "FolderItem",
    "InputProblem",
    "ItemError",
    "LoadedItem",
    "read_image",
    "read_label_mask",
    "read_probs",
    "scan_folder",
]
