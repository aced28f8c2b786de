"""The set-up check: whether the labels and the model look like they belong together.

After the single read, the share of labelled pixels where the model's argmax
agrees with the label, and the share estimated to be label issues, tell a
probably wrong set-up (shifted class ids, logits passed as probabilities)
from a sound one; :func:`warn_setup` reports it as a :class:`SetupWarning`.
"""

from __future__ import annotations

import os
import sys
import warnings
from types import FrameType

__all__ = [
    "MAX_ISSUE_FRACTION",
    "MIN_AGREEMENT",
    "SetupWarning",
    "setup_problems",
    "warn_setup",
]

MIN_AGREEMENT = 0.5
"""Below this fraction of labelled pixels where the model's argmax equals the label, warn."""
MAX_ISSUE_FRACTION = 0.3
"""Above this fraction of labelled pixels estimated to be label issues, warn."""

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CAUSES = (
    "Likely causes: class ids shifted between the masks and the model (e.g. ADE20K masks "
    "use 0 = 'other' and 1..150 for the classes: apply a label map, or reduce-zero-label, "
    "to make them 0..149 with 0 as ignore_index); a wrong label map or class order; logits "
    "passed as probabilities (use from_logits=True); or a model not trained on these "
    "classes. The flagged pixels are not meaningful until this is fixed."
)


class SetupWarning(UserWarning):
    """The labels and the model disagree so much that the set-up is probably wrong.

    Raised as a warning by ``find_label_issues`` and :class:`~segaudit.LabelAudit`
    when the model's argmax agrees with under half of the labelled pixels, or
    when over 30% of them are estimated to be label issues.
    """

    __module__ = "segaudit"  # where users find it, e.g. for warning filters


def setup_problems(labelled: int, disagreeing: int, num_issues: int) -> list[str]:
    """Return messages describing a probably wrong set-up (empty if it looks sound).

    Parameters
    ----------
    labelled : int
        Labelled (non-void) pixels of the ranking grid.
    disagreeing : int
        Those of them where the model's argmax differs from the label.
    num_issues : int
        T, the estimated number of label issues (an upper bound on the flagged pixels).

    Returns
    -------
    list of str
        One message per failed check: agreement below :data:`MIN_AGREEMENT`,
        issues above :data:`MAX_ISSUE_FRACTION` of the labelled pixels.

    Examples
    --------
    >>> setup_problems(100, 10, 5)
    []
    >>> [m.split(".")[0] for m in setup_problems(100, 60, 5)]
    ["The model's predicted class agrees with the label on only 40"]
    >>> setup_problems(0, 0, 0)  # no labelled pixel: nothing to judge
    []
    """
    if labelled <= 0:
        return []
    messages: list[str] = []
    agreement = 1.0 - disagreeing / labelled
    if agreement < MIN_AGREEMENT:
        messages.append(
            f"The model's predicted class agrees with the label on only {agreement:.1%} of "
            f"the {labelled} labelled pixels (under {MIN_AGREEMENT:.0%}). {_CAUSES}"
        )
    fraction = num_issues / labelled
    if fraction > MAX_ISSUE_FRACTION:
        messages.append(
            f"{fraction:.1%} of the {labelled} labelled pixels ({num_issues}) are estimated "
            f"to be label issues (over {MAX_ISSUE_FRACTION:.0%}). {_CAUSES}"
        )
    return messages


def warn_setup(messages: list[str] | tuple[str, ...]) -> None:
    """Emit each message as a :class:`SetupWarning` pointing at the user's call.

    The warning is attributed to the first frame outside the segaudit package,
    whichever public function (or generator) led here.
    """
    if not messages:
        return
    frame: FrameType | None = sys._getframe(0)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    for message in messages:
        warnings.warn(message, SetupWarning, stacklevel=level)
