"""The base class for models written in plain Python, registered with the ``python`` flavor."""

from __future__ import annotations

from typing import Any

__all__ = ["PythonModel"]


class PythonModel:
    """Subclass and implement ``predict(data)`` (and ``predict_proba`` if it has one).

    The class is saved by its import path and re-imported when loaded, so
    define it in an installed or importable module, not in ``__main__`` or
    inside a function (those need ``allow_pickle=True``). The instance's
    attributes are its state: they are saved with skops, so keep them to
    numbers, strings, containers, numpy arrays and scikit-learn objects.

        # credit_models/rules.py
        class Threshold(sy.PythonModel):
            def __init__(self, column: str, cut: float) -> None:
                self.column = column
                self.cut = cut

            def predict(self, data):
                return (data[self.column] > self.cut).astype(int).to_numpy()

        sy.log_model(Threshold("income", 50_000), name="credit-rule", input_example=df)
    """

    def predict(self, data: Any) -> Any:
        """Return one prediction per row of ``data`` (a pandas DataFrame)."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must define predict(self, data) to be a PythonModel."
        )
