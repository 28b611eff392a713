"""scikit-learn's estimator base classes when available, a minimal stand-in otherwise.

eaelib must work from its folder alone with NumPy; scikit-learn, when
installed, makes the estimator a full citizen (``clone``, pipelines, grid search).
"""

from __future__ import annotations

import inspect

try:
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError

    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False

    class NotFittedError(ValueError, AttributeError):
        """Raised when a method needs a fitted estimator."""

    class ConvergenceWarning(UserWarning):
        """Issued when fitting stopped before convergence."""

    class DataConversionWarning(UserWarning):
        """Issued when the data are converted in a way the user may not expect."""

    class BaseEstimator:
        """``get_params``/``set_params`` from the ``__init__`` signature, as in scikit-learn."""

        @classmethod
        def _get_param_names(cls):
            signature = inspect.signature(cls.__init__)
            return sorted(p.name for p in signature.parameters.values() if p.name != "self")

        def get_params(self, deep=True):
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for key, value in params.items():
                if key not in valid:
                    raise ValueError(f"Invalid parameter {key!r} for {type(self).__name__}; valid ones are {valid}")
                setattr(self, key, value)
            return self

        def __repr__(self):
            params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({params})"

    class TransformerMixin:
        """``fit_transform`` as ``fit`` then ``transform``."""

        def fit_transform(self, X, y=None, **fit_params):
            return self.fit(X, y, **fit_params).transform(X)


__all__ = [
    "HAVE_SKLEARN",
    "BaseEstimator",
    "ConvergenceWarning",
    "DataConversionWarning",
    "NotFittedError",
    "TransformerMixin",
]
