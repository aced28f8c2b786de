"""Drivers: how data reaches the engine.

``_arrays`` (numpy arrays, memmaps, zarr, torch tensors, batch by batch),
``_stream`` (:class:`~segaudit.LabelAudit`; ``_parts``, what one batch goes
through; ``_store``, RAM then disk) and ``_dask*`` (the same steps as a dask
graph).
"""
