"""Region-level issues: connected regions of flagged pixels, typed and ranked.

Examples
--------
>>> import numpy as np
>>> from segaudit.regions import find_issue_regions
>>> issues = np.zeros((1, 4, 4), dtype=bool); issues[0, 1:3, 1:3] = True
>>> labels = np.zeros((1, 4, 4), dtype=int); labels[0, 1:3, 1:3] = 1
>>> probs = np.zeros((1, 2, 4, 4)); probs[:, 0] = 0.9; probs[:, 1] = 0.1
>>> find_issue_regions(issues, labels, probs)[["area", "issue_type"]]
   area      issue_type
0     4  spurious_label
"""

from segaudit.regions._find import find_issue_regions
from segaudit.regions._records import BBOX_COLUMNS, ISSUE_TYPES

__all__ = ["BBOX_COLUMNS", "ISSUE_TYPES", "find_issue_regions"]
