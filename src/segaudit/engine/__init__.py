"""The engine: one algorithm over batch summaries.

Running totals and exact per-class sums (``_accumulate``, ``_exact``) give the
confident thresholds and the issue count T; ``_select`` finds the T-th lowest
(score, index) exactly; ``_finder`` turns that cutoff into masks; ``_detect`` holds the
detectors (``filter_by``), the reference's and ``confident_regions``; ``_setup``
checks the set-up; ``_scores`` holds the image-score methods. The engine never
reads files or knows where a summary is stored.
"""
