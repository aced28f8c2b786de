"""Lazy public names of a package (PEP 562): each is imported from its module on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    namespace: MutableMapping[str, Any], sources: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's ``__getattr__`` and ``__dir__`` for names imported on first use.

    Parameters
    ----------
    namespace : dict
        The package's ``globals()``.
    sources : mapping of str to str
        Public name -> the module it is imported from. A resolved name is kept
        in `namespace`, so it is imported once. Other names that are
        sub-modules of the package (``segaudit.filter``) are imported too.

    Examples
    --------
    >>> namespace = {"__name__": "json"}
    >>> getattr_, dir_ = lazy_names(namespace, {"dumps": "json"})
    >>> getattr_("dumps")([1]), "dumps" in namespace, getattr_("decoder").__name__
    ('[1]', True, 'json.decoder')
    >>> getattr_("nothing")
    Traceback (most recent call last):
    AttributeError: module 'json' has no attribute 'nothing'
    """
    package = str(namespace["__name__"])

    def getattr_(name: str) -> Any:
        source = sources.get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
            namespace[name] = value
            return value
        if not name.startswith("_"):
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(sources))

    return getattr_, dir_
