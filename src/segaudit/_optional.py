"""Optional dependencies: imported when first used, with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, purpose: str, *, package: str | None = None) -> ModuleType:
    """Import `module`, or raise an ImportError that says which extra to install.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"scipy.ndimage"``; its top-level package is
        imported first.
    extra : str
        The segaudit extra that provides it, e.g. ``"io"``.
    purpose : str
        What needs it, to begin the message, e.g. ``"Finding regions"``.
    package : str, optional
        The name to install, when it is not the top-level package (``"Pillow"``
        for ``PIL``).

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    ImportError
        Raised from the original error when `module` cannot be imported.

    Examples
    --------
    >>> require("json.decoder", "io", "Reading JSON").__name__
    'json.decoder'
    >>> require("no_such_module", "io", "This example", package="nothing")
    Traceback (most recent call last):
    ...
    ImportError: This example needs nothing: pip install 'segaudit[io]'
    """
    root = module.split(".")[0]
    try:
        importlib.import_module(root)
        return importlib.import_module(module)
    except ImportError as err:
        name = root if package is None else package
        raise ImportError(f"{purpose} needs {name}: pip install 'segaudit[{extra}]'") from err
