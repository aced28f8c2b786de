"""File input and output: readers for mask/probability folders, atomic writers."""

from segaudit.io._atomic import atomic_path, atomic_write

__all__ = ["atomic_path", "atomic_write"]
