"""segaudit: find mislabeled pixels and regions in semantic-segmentation datasets.

The public API lives here; ``segaudit.filter``, ``segaudit.rank`` and
``segaudit.summary`` mirror the module names of ``cleanlab.segmentation`` so
that switching is a one-line import change.
"""

from segaudit.drivers._stream import AuditImage, LabelAudit
from segaudit.engine._setup import SetupWarning
from segaudit.filter import find_label_issues
from segaudit.rank import get_label_quality_scores, issues_from_scores
from segaudit.regions import find_issue_regions
from segaudit.summary import common_label_issues, display_issues, filter_by_class

__version__ = "0.1.0"

__all__ = [
    "AuditImage",
    "LabelAudit",
    "SetupWarning",
    "common_label_issues",
    "display_issues",
    "filter_by_class",
    "find_issue_regions",
    "find_label_issues",
    "get_label_quality_scores",
    "issues_from_scores",
]
