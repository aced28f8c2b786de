"""The engine: per-pixel summary, confident thresholds, issue count, exact selection."""
