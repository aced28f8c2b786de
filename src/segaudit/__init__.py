"""segaudit: find mislabeled pixels and regions in semantic-segmentation datasets.

The public API lives here; ``segaudit.filter``, ``segaudit.rank`` and
``segaudit.summary`` mirror the module names of ``cleanlab.segmentation`` so
that switching is a one-line import change.

``import segaudit`` is light: each public name is imported from its module on
first use (PEP 562), so numpy, pandas, scipy and numba load when a call needs
them.
"""

import typing as _typing

from segaudit._lazy import lazy_names as _lazy_names
from segaudit._version import __version__ as __version__

if _typing.TYPE_CHECKING:
    from segaudit._audit import LabelAudit
    from segaudit.drivers._stream import AuditImage
    from segaudit.engine._setup import SetupWarning
    from segaudit.filter import find_label_issues
    from segaudit.rank import get_label_quality_scores, issues_from_scores
    from segaudit.regions import find_issue_regions
    from segaudit.summary import common_label_issues, display_issues, filter_by_class


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

__getattr__, __dir__ = _lazy_names(
    globals(),
    {
        "AuditImage": "segaudit.drivers._stream",
        "LabelAudit": "segaudit._audit",
        "SetupWarning": "segaudit.engine._setup",
        "common_label_issues": "segaudit.summary",
        "display_issues": "segaudit.summary",
        "filter_by_class": "segaudit.summary",
        "find_issue_regions": "segaudit.regions",
        "find_label_issues": "segaudit.filter",
        "get_label_quality_scores": "segaudit.rank",
        "issues_from_scores": "segaudit.rank",
    },
)
