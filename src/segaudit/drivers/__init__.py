"""Drivers: how data reaches the engine.

``_arrays`` (numpy arrays, memmaps, zarr, torch tensors, batch by batch),
``_stream`` (:class:`~segaudit.LabelAudit`, with its RAM-then-disk
``_store``) and ``_dask*`` (the same steps as a dask graph).
"""
