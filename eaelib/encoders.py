r"""Learned encoders: approximate sparse codes of a fitted model in a fixed number of operations.

The exact codes of a fitted model (``D``, ``E``, ``λ_d``, ``λ_e``, ``λ_s``) solve, sample by sample, ::

    z*(x) = argmin_z  λ_d/2 ‖x − D z‖² + λ_e/2 ‖z − E x‖² + λ_s ‖z‖₁

by an iterative solver whose cost depends on the sample. The model's own encoder ``E x`` is one matrix
product, but linear, hence dense. The two encoders here sit in between, and are *trained* to predict
``z*(x)``:

* :class:`ShrinkageEncoder`, in the spirit of predictive sparse decomposition (Kavukcuoglu, Ranzato and
  LeCun, 2008): ``z = soft(W x, θ)``, a learned linear map ``W`` (m × n) followed by a soft threshold
  with one learned threshold ``θ_k ≥ 0`` per atom. Untrained, it starts from the model's encoder
  (``W = E``, ``θ = 0``): it *is* ``E x``.
* :class:`LISTA`, learned ISTA (Gregor and LeCun, 2010): ``K`` layers ::

      z_1 = soft(W x, θ_1),    z_t = soft(W x + S z_{t−1}, θ_t)   (t = 2, …, K),

  started from ISTA on the model's code problem (:func:`ista_weights`), so that the untrained network
  computes exactly ``K`` ISTA steps from ``z = 0``. ``W`` and ``S`` are shared by the layers, as in
  Gregor and LeCun's network, so that the number of weights does not grow with the depth; each layer has
  its own thresholds, because a fixed threshold is what keeps ISTA from converging faster: Chen et al.
  (2018) show that thresholds decreasing with depth give linear convergence, and Ablin et al. (2019)
  that what a deep LISTA learns is mostly a step size (a scale of the thresholds) per layer.

Both are trained by minimizing the mean squared code error against the exact codes,
``ℓ = 1/(2N) Σ_j ‖ẑ(x_j) − z*(x_j)‖²``, with gradients written out by hand (backpropagation through the
soft threshold, whose derivative in ``u`` is the indicator of ``|u| > θ``) and Adam (Kingma and Ba, 2015)
on mini-batches, for a fixed budget of epochs; the thresholds are projected back onto ``θ ≥ 0`` after
every step. The models follow scikit-learn's conventions (samples as rows, ``fit``/``transform``), and
``inverse_transform`` is the model's, so that :func:`~eaelib.denoise` takes an encoder as its model.
"""

from __future__ import annotations

import math

from ._array import from_numpy, get_namespace
from ._validation import check_array, check_random_state, check_scalar
from .fista import soft_threshold

# Adam's constants, as Kingma and Ba (2015) recommend them.
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


def ista_weights(D, E, *, lambda_d, lambda_e, lambda_s):
    r"""Return the weights of one ISTA step on the code problem: ``z ← soft(W x + S z, θ)``.

    ISTA on ``λ_d/2 ‖x − D z‖² + λ_e/2 ‖z − E x‖² + λ_s ‖z‖₁`` with step ``1/L``, where
    ``L = λ_d ‖D‖₂² + λ_e`` is the Lipschitz constant of the smooth part's gradient, is
    ``z ← soft(z − (λ_d Dᵀ(D z − x) + λ_e (z − E x))/L, λ_s/L)``, that is ``soft(W x + S z, θ)`` with

    .. math:: W = \frac{\lambda_d D^\top + \lambda_e E}{L}, \quad
              S = I - \frac{\lambda_d D^\top D + \lambda_e I}{L}, \quad \theta = \frac{\lambda_s}{L}.

    Parameters
    ----------
    D : array, shape (n_features, n_atoms)
        Dictionary, atoms as columns.
    E : array, shape (n_atoms, n_features)
        Encoder.
    lambda_d, lambda_e, lambda_s : float
        The weights of the energy's terms (``λ_d`` and ``λ_e`` not both 0).

    Returns
    -------
    W : array, shape (n_atoms, n_features)
        The map applied to the sample at every step.
    S : array, shape (n_atoms, n_atoms)
        The map applied to the previous code.
    theta : array, shape (n_atoms,)
        The threshold, ``λ_s/L`` for every atom.

    Examples
    --------
    >>> import numpy as np
    >>> from eaelib import ista_weights
    >>> D, E = np.eye(2), np.zeros((2, 2))  # orthonormal atoms, no encoder term:
    >>> # ISTA's first step from 0 is then the Lasso's solution
    >>> W, S, theta = ista_weights(D, E, lambda_d=1.0, lambda_e=0.0, lambda_s=0.5)
    >>> W.tolist(), S.tolist(), theta.tolist()
    ([[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], [0.5, 0.5])
    """
    xp, D = check_array(D, name="D", shape_hint="(n_features, n_atoms)")
    _, E = check_array(E, name="E", xp=xp, dtype=D.dtype, shape_hint="(n_atoms, n_features)")
    if tuple(E.shape) != (D.shape[1], D.shape[0]):
        raise ValueError(f"E must have shape {(D.shape[1], D.shape[0])} (n_atoms, n_features), got {tuple(E.shape)}")
    lambda_d = check_scalar(lambda_d, "lambda_d", low=0.0)
    lambda_e = check_scalar(lambda_e, "lambda_e", low=0.0)
    lambda_s = check_scalar(lambda_s, "lambda_s", low=0.0)
    lipschitz = lambda_d * float(xp.linalg.matrix_norm(D, ord=2)) ** 2 + lambda_e
    if lipschitz <= 0:
        raise ValueError("lambda_d and lambda_e cannot both be 0 (with D = 0, lambda_e > 0 is needed): L would be 0")
    m = D.shape[1]
    identity = xp.eye(m, dtype=D.dtype, device=D.device)
    W = (lambda_d * D.mT + lambda_e * E) / lipschitz
    S = identity - (lambda_d * (D.mT @ D) + lambda_e * identity) / lipschitz
    theta = xp.full((m,), lambda_s / lipschitz, dtype=D.dtype, device=D.device)
    return W, S, theta


def _forward(X, W, S, thetas):
    """The layers' pre-activations ``U_t`` and codes ``Z_t`` (samples as columns); ``thetas`` is (K, m)."""
    H = W @ X
    pre, codes = [H], [soft_threshold(H, thetas[0, :][:, None])]
    for t in range(1, thetas.shape[0]):
        U = H + S @ codes[-1]
        pre.append(U)
        codes.append(soft_threshold(U, thetas[t, :][:, None]))
    return pre, codes


def _backward(X, S, thetas, pre, codes, Z_bar):
    """Gradients ``(∂ℓ/∂W, ∂ℓ/∂S, ∂ℓ/∂θ)`` given ``Z_bar = ∂ℓ/∂Z_K``, by the chain rule from the last layer down.

    With ``M_t = 1[|U_t| > θ_t]`` and ``Δ_t = Z̄_t ⊙ M_t`` (``= ∂ℓ/∂U_t``): ``∂ℓ/∂θ_t = −Σ_j (Δ_t ⊙ sign U_t)``,
    ``∂ℓ/∂S = Σ_{t≥2} Δ_t Z_{t−1}ᵀ``, ``Z̄_{t−1} = Sᵀ Δ_t`` and ``∂ℓ/∂W = (Σ_t Δ_t) Xᵀ`` (the book's notation).
    """
    xp = get_namespace(X)
    grad_H = xp.zeros_like(pre[0])
    grad_S = None if S is None else xp.zeros_like(S)
    grad_thetas = []
    for t in range(thetas.shape[0] - 1, -1, -1):
        U = pre[t]
        active = xp.astype(xp.abs(U) > thetas[t, :][:, None], U.dtype)
        delta = Z_bar * active
        grad_thetas.append(-xp.sum(delta * xp.sign(U), axis=1))
        grad_H = grad_H + delta
        if t > 0:
            grad_S = grad_S + delta @ codes[t - 1].mT
            Z_bar = S.mT @ delta
    return grad_H @ X.mT, grad_S, xp.stack(grad_thetas[::-1])


def _loss(Z, target):
    """``‖Z − target‖²/(2N)`` for ``N`` samples as columns, a Python float."""
    xp = get_namespace(Z)
    residual = xp.reshape(Z - target, (-1,))
    return float(residual @ residual) / (2 * Z.shape[1])


def _model_parts(model):
    """``(D, E, lambdas)`` of a fitted model: its ``D_``, ``E_``, ``lambda_d``, ``lambda_e`` and ``lambda_s``."""
    missing = [name for name in ("D_", "E_", "lambda_d", "lambda_e", "lambda_s") if not hasattr(model, name)]
    if missing:
        raise ValueError(
            f"model must be a fitted EnergyAutoEncoder (or have D_, E_, lambda_d, lambda_e and lambda_s): "
            f"{type(model).__name__} lacks {', '.join(missing)}"
        )
    lambdas = {
        name: check_scalar(getattr(model, name), f"model.{name}", low=0.0)
        for name in ("lambda_d", "lambda_e", "lambda_s")
    }
    return model.D_, model.E_, lambdas


class _UnrolledEncoder:
    """What :class:`ShrinkageEncoder` and :class:`LISTA` share: the network, its training and its use."""

    def __init__(self, model, *, n_epochs=50, batch_size=128, learning_rate=1e-3, random_state=None):
        self.model = model
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state

    def _check_settings(self):
        check_scalar(self.n_epochs, "n_epochs", kind="int", low=0)
        check_scalar(self.batch_size, "batch_size", kind="int", low=1)
        check_scalar(self.learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        return check_random_state(self.random_state)

    def _samples(self, X, name="X"):
        """``X`` checked against the model: its library, dtype and number of features; samples as rows."""
        D = _model_parts(self.model)[0]
        _, X = check_array(X, name=name, xp=get_namespace(D), device=D.device, dtype=D.dtype)
        if X.shape[1] != D.shape[0]:
            raise ValueError(f"{name} has {X.shape[1]} features, but the model's atoms have {D.shape[0]}")
        return X

    def _fitted(self):
        if not hasattr(self, "W_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit(X) first")
        return self.W_, getattr(self, "S_", None), self._thetas

    def fit(self, X, Z=None):
        """Train the encoder to predict the exact codes ``Z`` of ``X``, starting anew.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Training samples as rows, in the model's array library (or converted to it).
        Z : array-like, shape (n_samples, n_atoms), optional
            Their exact codes; by default ``model.transform(X)`` (the model's exact solver).

        Returns
        -------
        self
            The encoder, with ``W_``, ``theta_`` (and ``S_``) trained and ``loss_history_`` set.

        Raises
        ------
        ValueError
            If a setting is out of range, or ``X`` or ``Z`` does not match the model: the message names it.
        """
        rng = self._check_settings()
        D, E, lambdas = _model_parts(self.model)
        X = self._samples(X)
        Z = self.model.transform(X) if Z is None else Z
        _, Z = check_array(Z, name="Z", xp=get_namespace(D), device=D.device, dtype=D.dtype)
        if tuple(Z.shape) != (X.shape[0], D.shape[1]):
            raise ValueError(f"Z must have shape {(X.shape[0], D.shape[1])} (n_samples, n_atoms), got {tuple(Z.shape)}")
        params = self._initial(D, E, lambdas)
        self.loss_history_ = _train(params, X.mT, Z.mT, self, rng)
        self._store(params)
        return self

    def transform(self, X):
        """Compute the codes of ``X`` by the trained network: a fixed number of matrix products.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Samples as rows.

        Returns
        -------
        array, shape (n_samples, n_atoms)
            The predicted codes, samples as rows, in the model's array library and dtype.

        Raises
        ------
        ValueError
            If the encoder is not fitted, or ``X`` has another number of features than the model.
        """
        W, S, thetas = self._fitted()
        X = self._samples(X)
        return _forward(X.mT, W, S, thetas)[1][-1].mT

    def inverse_transform(self, Z):
        """Rebuild samples from codes with the model's dictionary: ``model.inverse_transform(Z)``.

        Parameters
        ----------
        Z : array-like, shape (n_samples, n_atoms)
            Codes, samples as rows (as :meth:`transform` returns them).

        Returns
        -------
        array, shape (n_samples, n_features)
            ``Z @ D_.T``.
        """
        return self.model.inverse_transform(Z)


def _train(params, X, Z, settings, rng):
    """Adam on mini-batches of the columns of ``X`` for ``settings.n_epochs``; returns the loss after each epoch.

    ``params`` (a dict of arrays: ``W``, ``S`` or None, ``thetas``) is updated in place; the thresholds are
    projected onto ``θ ≥ 0`` after every step. The loss of the whole training set is recorded before the
    first epoch and after each.
    """
    xp, N = get_namespace(X), X.shape[1]
    names = [name for name in ("W", "S", "thetas") if params[name] is not None]
    moments = {name: (xp.zeros_like(params[name]), xp.zeros_like(params[name])) for name in names}

    def loss():
        return _loss(_forward(X, params["W"], params["S"], params["thetas"])[1][-1], Z)

    history, step = [loss()], 0
    for _ in range(settings.n_epochs):
        order = rng.permutation(N)
        for start in range(0, N, settings.batch_size):
            index = from_numpy(xp, order[start : start + settings.batch_size], device=X.device)
            Xb, Zb = xp.take(X, index, axis=1), xp.take(Z, index, axis=1)
            pre, codes = _forward(Xb, params["W"], params["S"], params["thetas"])
            Z_bar = (codes[-1] - Zb) / Xb.shape[1]  # ∂ℓ/∂Z_K on the batch
            grads = _backward(Xb, params["S"], params["thetas"], pre, codes, Z_bar)
            grads = dict(zip(("W", "S", "thetas"), grads, strict=True))
            step += 1
            for name in names:
                params[name], moments[name] = _adam(
                    params[name], grads[name], moments[name], step, settings.learning_rate
                )
            params["thetas"] = xp.clip(params["thetas"], min=0.0)
        history.append(loss())
    return history


def _adam(value, grad, moments, step, learning_rate):
    """One Adam step (Kingma and Ba, 2015): ``(new value, new moments)``."""
    xp = get_namespace(value)
    first, second = moments
    first = _BETA1 * first + (1 - _BETA1) * grad
    second = _BETA2 * second + (1 - _BETA2) * grad * grad
    rate = learning_rate * math.sqrt(1 - _BETA2**step) / (1 - _BETA1**step)
    return value - rate * first / (xp.sqrt(second) + _EPS), (first, second)


class ShrinkageEncoder(_UnrolledEncoder):
    """A shrinkage encoder ``z = soft(W x, θ)`` trained to predict a model's exact codes (PSD-style).

    Predictive sparse decomposition (Kavukcuoglu, Ranzato and LeCun, 2008) learns, beside a dictionary,
    an encoder that predicts the sparse codes with a linear map followed by a non-linearity. Here the
    dictionary is the fitted model's, and the non-linearity a soft threshold with one threshold ``θ_k ≥ 0``
    per atom, so that the predicted codes are sparse. Training starts from the model's own encoder
    (``W = E``, ``θ = 0``: the untrained encoder is ``E x``) and minimizes the mean squared code error
    ``1/(2N) Σ_j ‖soft(W x_j, θ) − z*_j‖²`` by Adam on mini-batches (see :mod:`eaelib.encoders`).

    Parameters
    ----------
    model : fitted EnergyAutoEncoder
        The model whose codes to predict: anything with ``D_``, ``E_``, ``lambda_d``, ``lambda_e``,
        ``lambda_s``, ``transform`` and ``inverse_transform``.
    n_epochs : int, default=50
        The training budget: passes over the training samples, all of them run (no early stop).
    batch_size : int, default=128
        Samples per Adam step.
    learning_rate : float, default=1e-3
        Adam's step size.
    random_state : int, numpy.random.Generator or None
        Seed of the order of the samples in every epoch: the same seed gives the same encoder.

    Attributes
    ----------
    W_ : array, shape (n_atoms, n_features)
        The learned linear map.
    theta_ : array, shape (n_atoms,)
        The learned thresholds, ≥ 0.
    loss_history_ : list of float
        The training loss ``1/(2N) Σ_j ‖ẑ_j − z*_j‖²`` before training and after every epoch.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from eaelib import EnergyAutoEncoder, ShrinkageEncoder
    >>> X = np.random.default_rng(0).standard_normal((300, 8))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # a short fit, stopped at max_outer
    ...     model = EnergyAutoEncoder(12, lambda_s=2.0, max_outer=5, random_state=0)
    ...     _ = model.fit(X)
    >>> settings = dict(n_epochs=20, learning_rate=1e-2, random_state=0)
    >>> encoder = ShrinkageEncoder(model, **settings).fit(X)
    >>> history = encoder.loss_history_
    >>> history[-1] < history[0]  # better than the model's E x
    True
    >>> encoder.transform(X).shape
    (300, 12)
    """

    def _initial(self, D, E, lambdas):
        xp = get_namespace(D)
        thetas = xp.zeros((1, D.shape[1]), dtype=D.dtype, device=D.device)
        return {"W": xp.asarray(E, copy=True), "S": None, "thetas": thetas}

    def _store(self, params):
        self.W_, self._thetas = params["W"], params["thetas"]
        self.theta_ = params["thetas"][0, :]


class LISTA(_UnrolledEncoder):
    """Learned ISTA (Gregor and LeCun, 2010): ``n_layers`` ISTA steps on a model's code problem, trained.

    The network ::

        z_1 = soft(W x, θ_1),    z_t = soft(W x + S z_{t−1}, θ_t)   (t = 2, …, K)

    starts from ISTA on the model's code problem (:func:`ista_weights`: untrained, it computes exactly
    ``K`` ISTA steps from ``z = 0``) and is trained to predict the exact codes, minimizing
    ``1/(2N) Σ_j ‖z_K(x_j) − z*_j‖²`` by Adam on mini-batches (see :mod:`eaelib.encoders`). ``W`` and ``S``
    are shared by the layers, as in Gregor and LeCun's network; every layer has its own thresholds (Chen et
    al., 2018; Ablin et al., 2019).

    Parameters
    ----------
    model : fitted EnergyAutoEncoder
        The model whose codes to predict: anything with ``D_``, ``E_``, ``lambda_d``, ``lambda_e``,
        ``lambda_s``, ``transform`` and ``inverse_transform``.
    n_layers : int, default=4
        The depth ``K``: the number of soft thresholds (``K − 1`` products by ``S``).
    n_epochs : int, default=50
        The training budget: passes over the training samples, all of them run (no early stop); 0 keeps
        ISTA's weights.
    batch_size : int, default=128
        Samples per Adam step.
    learning_rate : float, default=1e-3
        Adam's step size.
    random_state : int, numpy.random.Generator or None
        Seed of the order of the samples in every epoch: the same seed gives the same network.

    Attributes
    ----------
    W_ : array, shape (n_atoms, n_features)
        The learned map of the sample.
    S_ : array, shape (n_atoms, n_atoms)
        The learned map of the previous layer's code (ISTA's, unused, with one layer).
    theta_ : array, shape (n_layers, n_atoms)
        The learned thresholds of every layer, ≥ 0.
    loss_history_ : list of float
        The training loss ``1/(2N) Σ_j ‖ẑ_j − z*_j‖²`` before training and after every epoch.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from eaelib import LISTA, EnergyAutoEncoder
    >>> X = np.random.default_rng(0).standard_normal((300, 8))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # a short fit, stopped at max_outer
    ...     model = EnergyAutoEncoder(12, lambda_s=2.0, max_outer=5, random_state=0)
    ...     _ = model.fit(X)
    >>> settings = dict(n_epochs=20, learning_rate=1e-2, random_state=0)
    >>> lista = LISTA(model, n_layers=3, **settings).fit(X)
    >>> history = lista.loss_history_
    >>> history[-1] < history[0] / 2  # far better than 3 ISTA steps
    True
    >>> lista.theta_.shape
    (3, 12)
    """

    def __init__(self, model, n_layers=4, *, n_epochs=50, batch_size=128, learning_rate=1e-3, random_state=None):
        super().__init__(
            model, n_epochs=n_epochs, batch_size=batch_size, learning_rate=learning_rate, random_state=random_state
        )
        self.n_layers = n_layers

    def _check_settings(self):
        check_scalar(self.n_layers, "n_layers", kind="int", low=1)
        return super()._check_settings()

    def _initial(self, D, E, lambdas):
        xp = get_namespace(D)
        W, S, theta = ista_weights(D, E, **lambdas)
        thetas = xp.stack([theta] * int(self.n_layers))
        # With one layer S is never applied: its gradient is 0, and Adam leaves it at ISTA's.
        return {"W": W, "S": S, "thetas": thetas}

    def _store(self, params):
        self.W_, self.S_, self._thetas = params["W"], params["S"], params["thetas"]
        self.theta_ = params["thetas"]
