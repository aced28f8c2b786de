"""Measure label-error detection: inject known errors, simulate models, score the flags.

``inject_label_noise`` corrupts clean labels with realistic annotation mistakes
(swapped, missed, spurious objects and shifted borders) and returns the exact
truth; ``make_scenes`` generates synthetic scenes with such errors and the
predictions of simulated models; ``score_detection`` scores a detector's flags
against the truth per pixel, per region and per image.
"""

from segaudit.evaluate._inject import ERROR_COLUMNS, ERROR_KINDS, NoisyLabels, inject_label_noise
from segaudit.evaluate._scenes import Scenes, make_scenes
from segaudit.evaluate._score import DetectionScores, average_precision, score_detection

__all__ = [
    "ERROR_COLUMNS",
    "ERROR_KINDS",
    "DetectionScores",
    "NoisyLabels",
    "Scenes",
    "average_precision",
    "inject_label_noise",
    "make_scenes",
    "score_detection",
]
