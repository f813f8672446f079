"""Models defined in an importable module, as the ``python`` flavor requires."""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.models._python_model import PythonModel


class Threshold(PythonModel):
    """Predicts 1 where ``column`` exceeds ``cut``; probabilities from a logistic curve."""

    def __init__(self, column: str, cut: float) -> None:
        self.column = column
        self.cut = cut
        self.weights = np.array([0.5, 2.0])

    def predict(self, data: Any) -> np.ndarray:
        return (data[self.column].to_numpy() > self.cut).astype(np.int64)

    def predict_proba(self, data: Any) -> np.ndarray:
        p = 1 / (1 + np.exp(-(data[self.column].to_numpy() - self.cut) * self.weights[1]))
        return np.column_stack([1 - p, p])


class Wrapper(PythonModel):
    """Wraps a fitted scikit-learn model: its state is the estimator itself."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, data: Any) -> np.ndarray:
        return self.model.predict(data)


class WithSetState(PythonModel):
    """Keeps its state in a custom shape, restored by ``__setstate__``."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __getstate__(self) -> dict[str, Any]:
        return {"f": self.factor}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.factor = state["f"]

    def predict(self, data: Any) -> np.ndarray:
        return data.to_numpy().sum(axis=1) * self.factor
