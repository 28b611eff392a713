"""Where online learning's batches come from: in memory, a stream of patches, or a Dask array.

Each is a *batch source* (the protocol is described by :class:`eaelib.online.ArraySource`):
:class:`~eaelib.online.ArraySource` for an array, :class:`~eaelib.online.StreamSource` for a
:class:`~eaelib.PatchStream`, :class:`~eaelib.distributed.DaskSource` for a ``dask.array``;
:func:`batch_source` picks the one for what ``fit`` is given, and :func:`eaelib.online.learn_online`
learns from any of them.
"""

from __future__ import annotations

import sys


def is_patch_stream(X):
    """Whether ``X`` is a :class:`~eaelib.PatchStream` (without importing streams.py, which a copy may lack)."""
    streams = sys.modules.get(f"{__package__}.streams")
    return streams is not None and isinstance(X, streams.PatchStream)


def is_dask_array(X):
    """Whether ``X`` is a ``dask.array.Array``, without importing Dask."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks") and hasattr(X, "to_delayed")


def batch_source(X, *, batch_size, shuffle, backend, dtype):
    """The batch source of a PatchStream or a ``dask.array``; None for anything else.

    Parameters
    ----------
    X : object
        What ``fit`` was given.
    batch_size : int
        A Dask array's batches gather consecutive chunks holding at least this many samples (a stream has
        its own batches).
    shuffle : bool
        Visit a Dask array's batches in a new order every epoch (a stream shuffles its own).
    backend, dtype : str or None
        The estimator's parameters: where the model computes.

    Returns
    -------
    StreamSource, DaskSource or None
    """
    if is_patch_stream(X):
        from .online import StreamSource

        return StreamSource.for_model(X, backend, dtype)
    if is_dask_array(X):
        from .distributed import DaskSource

        return DaskSource.for_model(X, batch_size, shuffle, backend, dtype)
    return None
