"""Helpers shared by the streaming-audit tests."""

from __future__ import annotations

import numpy as np

import segaudit


def same_results(audit: segaudit.LabelAudit, other: segaudit.LabelAudit) -> None:
    """Assert that two audits give the same answers to every question, bit for bit."""
    assert audit.num_images == other.num_images
    np.testing.assert_array_equal(audit.thresholds, other.thresholds)
    assert audit.num_issues == other.num_issues
    np.testing.assert_array_equal(audit.find_label_issues(), other.find_label_issues())
    for a, b in zip(
        audit.get_label_quality_scores(), other.get_label_quality_scores(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(audit.image_scores(), other.image_scores())
    np.testing.assert_array_equal(
        audit.image_scores(method="num_pixel_issues"),
        other.image_scores(method="num_pixel_issues"),
    )
    if audit.options.downsample == 1:  # region_fraction needs the full-resolution grid
        np.testing.assert_array_equal(
            audit.image_scores(method="region_fraction"),
            other.image_scores(method="region_fraction"),
        )
    np.testing.assert_array_equal(audit.confusions(), other.confusions())
    assert [i.index for i in audit.iter_images()] == list(range(other.num_images))
