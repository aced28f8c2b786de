"""Backends: each computes the per-pixel summary of a batch (numba, numpy, torch)."""
