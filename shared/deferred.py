"""A callable named by module and attribute, imported at its first use, not where it is named.

The catalog names ~70 River constructors (and scikit-learn's MLPs); importing them all when the
catalog is imported would load river.anomaly, scipy.stats, scikit-learn's neural networks and
more into every process, a predict function's included, which serves none of them until a spec
asks (docs/architecture.md: the catalog). A `Deferred` stands for the constructor and imports
its module the first time it is called or `load`ed; Python's module cache makes later calls a
dictionary look-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Deferred:
    """`module.attr`, imported on first use: call it as the constructor it names."""

    module: str
    attr: str

    def load(self) -> Callable[..., Any]:
        target: Callable[..., Any] = getattr(importlib.import_module(self.module), self.attr)
        return target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)


def river(path: str) -> Deferred:
    """`river("anomaly.HalfSpaceTrees")`: a River constructor by its submodule and name."""
    module, _, attr = path.rpartition(".")
    return Deferred(f"river.{module}", attr)
