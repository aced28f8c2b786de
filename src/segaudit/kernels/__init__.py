"""Kernels: summarise one batch of pixels (numba, its numpy twin, torch); import nothing above.

The compiled kernels (``_numba``) and their numpy twins (``_numpy``) give
identical results; ``_choice.get_kernels`` picks one at call time
(``SEGAUDIT_KERNEL``). ``_batch`` allocates a batch's summary, runs a kernel
and raises input errors with their image, row and column; ``_torch`` computes
the same summary with torch ops on the tensor's device; ``_downsample`` pools
blocks before a batch is summarised.
"""
