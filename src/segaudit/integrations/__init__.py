"""Integrations with other tools; each module needs its own extra (e.g. ``fiftyone``)."""
