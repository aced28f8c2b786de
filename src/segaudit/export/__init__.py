"""Exports for the review round-trip: flagged regions as COCO, Label Studio and CVAT files.

Build a `ReviewSet` from the array API's results (`from_arrays`) or from a
scan folder (`from_scan`), then write one format (`write_coco`,
`write_labelstudio`, `write_cvat`) or several (`write_exports`); `export_scan`
does both for a scan folder. Each region's pixels come from labelling the
issue mask again exactly as `find_issue_regions` did (`region_map`).
"""

from segaudit.export._arrays import from_arrays
from segaudit.export._coco import write_coco
from segaudit.export._cvat import write_cvat
from segaudit.export._labelstudio import labelstudio_config, write_labelstudio
from segaudit.export._masks import region_crop, region_map
from segaudit.export._review import LABEL_BY, ReviewImage, ReviewRegion, ReviewSet
from segaudit.export._scan import from_scan
from segaudit.export._write import EXPORT_FILES, EXPORT_FORMATS, export_scan, write_exports

__all__ = [
    "EXPORT_FILES",
    "EXPORT_FORMATS",
    "LABEL_BY",
    "ReviewImage",
    "ReviewRegion",
    "ReviewSet",
    "export_scan",
    "from_arrays",
    "from_scan",
    "labelstudio_config",
    "region_crop",
    "region_map",
    "write_coco",
    "write_cvat",
    "write_exports",
    "write_labelstudio",
]
