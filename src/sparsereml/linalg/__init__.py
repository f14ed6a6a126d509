"""Linear-algebra stage: a sparse LDL' factor analysed once and refactored cheaply.

:class:`SparseLDL` follows scikit-sparse's life cycle: build it on the pattern of the lower
triangle of C, call :meth:`SparseLDL.factorize` with new values each iteration, then ask for
``logdet``, ``solve``, ``selected_inverse`` and ``inverse_quadratic``.
"""
from .backends import NotPositiveDefinite, available_backends
from .factor import SparseLDL

__all__ = ["SparseLDL", "NotPositiveDefinite", "available_backends"]
