"""The self-contained HTML report: ranked images, flagged pixels, regions and tables."""

from segaudit.report._html import write_report
from segaudit.report._image import ReportImage

__all__ = ["ReportImage", "write_report"]
