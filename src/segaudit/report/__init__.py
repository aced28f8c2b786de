"""The self-contained HTML report: worklists of images and regions, heat maps, pictures."""

from segaudit.report._html import write_report
from segaudit.report._image import ReportImage
from segaudit.report._metrics import count_pairs
from segaudit.report._palette import read_mask_palette

__all__ = ["ReportImage", "count_pairs", "read_mask_palette", "write_report"]
