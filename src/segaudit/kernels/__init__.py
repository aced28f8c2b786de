"""Kernels: summarise one batch of pixels (numba, its numpy twin, torch); import nothing above.

``_protocol`` is the interface (:class:`~segaudit.kernels._protocol.Kernels`,
``TILE``, the error codes). The compiled kernels (``_numba``, compiled by
``_jit``, which also decides where they are cached) and their numpy twins
(``_numpy``) implement it with identical results; ``_choice.get_kernels``
picks one at call time (``SEGAUDIT_KERNEL``). The default, ``"auto"``
(``_auto``), serves each call with the numpy twin until the compiled kernel
for its argument types is ready: large work starts a background compile
(``_warm``, a child process filling numba's disk cache), so no call waits
for numba. ``_batch`` allocates a batch's
summary, runs a kernel and raises input errors with their image, row and
column; ``_torch`` (with ``_torch_summary``) computes the same summary with
torch ops on the tensor's device; ``_downsample`` pools blocks before a batch
is summarised.
"""
