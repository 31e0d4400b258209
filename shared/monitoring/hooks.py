"""What OnlineModels tells the monitor: a narrow interface, so online.py stays about models.

Hooks run on the request path: they only buffer (no I/O, no awaiting). `started` is the
time.perf_counter() at which the model call began.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

# A delayed label, as the audit records it: (prediction id, the kept prediction's outcome as
# stored by encode_outcome, the label y)
LabelledPrediction = tuple[str, str, Any]


class Observer(Protocol):
    def predicted(
        self, tenant: str, name: str, route: str, started: float, x: Any, answer: dict[str, Any]
    ) -> None:
        """One prediction served (predict, or predict with a pinned version)."""

    def predicted_batch(
        self, tenant: str, name: str, started: float, instances: list[Any], answer: dict[str, Any]
    ) -> None:
        """A batch served: `answer` holds one result (or error) per instance."""

    def scored(
        self,
        tenant: str,
        name: str,
        started: float,
        x: Any,
        answer: dict[str, Any],
        pending: int,
        y: Any = None,
    ) -> None:
        """predict_learn appended its sample and outcome; `pending` outcomes await a fold;
        `y` is the sample's target (the actual beside the prediction)."""

    def learned(self, tenant: str, name: str, started: float, count: int) -> None:
        """`count` samples appended by learn."""

    def labelled(
        self,
        tenant: str,
        name: str,
        started: float,
        count: int,
        pending: int,
        labels: Sequence[LabelledPrediction] = (),
    ) -> None:
        """`count` delayed labels appended with their kept predictions as outcomes;
        `pending` outcomes await a fold; `labels` each label's id, kept outcome and y."""


class NullObserver:
    """No monitoring (OnlineModels built without a runtime, e.g. in unit tests)."""

    def predicted(
        self, tenant: str, name: str, route: str, started: float, x: Any, answer: dict[str, Any]
    ) -> None:
        pass

    def predicted_batch(
        self, tenant: str, name: str, started: float, instances: list[Any], answer: dict[str, Any]
    ) -> None:
        pass

    def scored(
        self,
        tenant: str,
        name: str,
        started: float,
        x: Any,
        answer: dict[str, Any],
        pending: int,
        y: Any = None,
    ) -> None:
        pass

    def learned(self, tenant: str, name: str, started: float, count: int) -> None:
        pass

    def labelled(
        self,
        tenant: str,
        name: str,
        started: float,
        count: int,
        pending: int,
        labels: Sequence[LabelledPrediction] = (),
    ) -> None:
        pass
