"""eaelib.encoders: the shrinkage encoder and LISTA, their hand-written gradients and their training."""

import warnings

import numpy as np
import pytest

from eaelib import LISTA, EnergyAutoEncoder, ShrinkageEncoder, centered_patches, denoise, ista_weights, soft_threshold
from eaelib._base import ConvergenceWarning
from eaelib.encoders import _backward, _forward, _loss

xps = pytest.importorskip("array_api_strict")

MODEL = dict(n_atoms=12, lambda_d=1.0, lambda_e=0.1, lambda_s=0.3, max_outer=8, random_state=0)


def data(n_samples=400, seed=0):
    """Samples (rows) with correlated features: a random mixing of a few sparse sources, plus noise."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((8, 8)) + 2.0 * np.eye(8)
    sources = rng.standard_normal((n_samples, 8)) * (rng.random((n_samples, 8)) < 0.4)
    return sources @ mixing + 0.05 * rng.standard_normal((n_samples, 8))


def fitted(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short fit, stopped at max_outer on purpose
        return EnergyAutoEncoder(**{**MODEL, **params}).fit(X)


@pytest.fixture(scope="module")
def model_and_data():
    X = data()
    return fitted(X[:300]), X[:300], X[300:]


def relative_error(A, B):
    return float(np.linalg.norm(A - B) / np.linalg.norm(B))


# -- the gradient ------------------------------------------------------------------------------------


def test_the_gradient_matches_central_finite_differences():
    # float64, a dictionary with coherent atoms (cond(DᵀD + λ_e I) in the hundreds), all three kinds of weights
    rng = np.random.default_rng(1)
    n, m, N, K = 6, 9, 15, 3
    D = rng.standard_normal((n, m))
    D[:, 1] = D[:, 0] + 0.1 * rng.standard_normal(n)  # two nearly parallel atoms
    D /= np.linalg.norm(D, axis=0)
    E = 0.3 * rng.standard_normal((m, n))
    W, S, theta = ista_weights(D, E, lambda_d=1.0, lambda_e=0.02, lambda_s=0.2)
    gram = D.T @ D + 0.02 * np.eye(m)
    assert np.linalg.cond(gram) > 100  # real conditioning, not a toy identity
    W = 3 * W + 0.1 * rng.standard_normal(W.shape)  # away from ISTA: every kind of term in play
    S = S + 0.1 * rng.standard_normal(S.shape)
    thetas = np.stack([6 * theta * (1 + 0.5 * t) for t in range(K)])
    X, target = rng.standard_normal((n, N)), rng.standard_normal((m, N))

    def loss(W, S, thetas):
        return _loss(_forward(X, W, S, thetas)[1][-1], target)

    pre, codes = _forward(X, W, S, thetas)
    assert (
        0.2 < np.mean([np.mean(np.abs(U) > th[:, None]) for U, th in zip(pre, thetas, strict=True)]) < 0.8
    )  # both regimes
    grads = _backward(X, S, thetas, pre, codes, (codes[-1] - target) / N)
    step = 1e-6
    for k, (value, grad) in enumerate(zip((W, S, thetas), grads, strict=True)):
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            up, down = [p.copy() for p in (W, S, thetas)], [p.copy() for p in (W, S, thetas)]
            up[k][index] += step
            down[k][index] -= step
            numeric[index] = (loss(*up) - loss(*down)) / (2 * step)
        assert relative_error(grad, numeric) < 1e-6, ("W", "S", "theta")[k]


# -- the initializations -------------------------------------------------------------------------------


def ista_by_hand(X, model, n_steps):
    """``n_steps`` ISTA steps from z = 0 on the model's code problem, written from its definition (samples as rows)."""
    D, E = model.D_, model.E_
    lipschitz = model.lambda_d * np.linalg.norm(D, 2) ** 2 + model.lambda_e
    Z = np.zeros((D.shape[1], X.shape[0]))
    for _ in range(n_steps):
        gradient = model.lambda_d * D.T @ (D @ Z - X.T) + model.lambda_e * (Z - E @ X.T)
        Z = soft_threshold(Z - gradient / lipschitz, model.lambda_s / lipschitz)
    return Z.T


@pytest.mark.parametrize("n_layers", [1, 2, 5])
def test_untrained_lista_is_ista(model_and_data, n_layers):
    model, X, X_test = model_and_data
    lista = LISTA(model, n_layers, n_epochs=0).fit(X)
    np.testing.assert_allclose(lista.transform(X_test), ista_by_hand(X_test, model, n_layers), rtol=1e-12, atol=1e-12)
    assert lista.loss_history_ == [pytest.approx(_loss(lista.transform(X).T, model.transform(X).T), rel=1e-12)]


def test_deep_untrained_lista_reaches_the_exact_codes(model_and_data):
    # ISTA's weights converge to the exact solver's codes: ista_weights is the model's code problem.
    model, X, X_test = model_and_data
    exact = model.transform(X_test)
    assert relative_error(LISTA(model, 2000, n_epochs=0).fit(X[:5]).transform(X_test), exact) < 1e-6


def test_untrained_shrinkage_encoder_is_the_models_encoder(model_and_data):
    model, X, X_test = model_and_data
    encoder = ShrinkageEncoder(model, n_epochs=0).fit(X)
    # (W X)ᵀ against X Eᵀ: the same numbers, summed perhaps in another order by BLAS
    np.testing.assert_allclose(encoder.transform(X_test), model.transform(X_test, method="encoder"), rtol=1e-12)
    assert encoder.theta_.shape == (12,) and not np.any(encoder.theta_)


# -- training ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "factor"),
    [
        (lambda m: ShrinkageEncoder(m, n_epochs=30, learning_rate=1e-2, random_state=0), 0.85),
        (lambda m: LISTA(m, 3, n_epochs=30, learning_rate=1e-2, random_state=0), 0.5),
    ],
)
def test_training_lowers_the_code_error_on_held_out_samples(model_and_data, make, factor):
    model, X, X_test = model_and_data
    exact = model.transform(X_test)
    encoder = make(model)
    untrained = type(encoder)(**{**vars(encoder), "n_epochs": 0}).fit(X)
    before = relative_error(untrained.transform(X_test), exact)
    after = relative_error(encoder.fit(X).transform(X_test), exact)
    assert after < factor * before, (before, after)
    history = encoder.loss_history_
    assert len(history) == 31 and history[-1] < factor * history[0]
    assert np.all(encoder.theta_ >= 0)
    # the trained codes are sparse, as the exact ones are
    assert np.mean(encoder.transform(X_test) == 0) > 0.3


def test_lista_beats_ista_and_the_shrinkage_encoder_at_equal_training(model_and_data):
    model, X, X_test = model_and_data
    exact = model.transform(X_test)
    settings = dict(n_epochs=30, learning_rate=1e-2, random_state=0)
    errors = {k: relative_error(LISTA(model, k, **settings).fit(X).transform(X_test), exact) for k in (1, 4)}
    ista = relative_error(ista_by_hand(X_test, model, 4), exact)
    assert errors[4] < errors[1] and errors[4] < 0.5 * ista, (errors, ista)


def test_the_same_seed_gives_the_same_encoder(model_and_data):
    model, X, _ = model_and_data
    first = LISTA(model, 2, n_epochs=3, random_state=5).fit(X)
    second = LISTA(model, 2, n_epochs=3, random_state=5).fit(X)
    other = LISTA(model, 2, n_epochs=3, random_state=6).fit(X)
    np.testing.assert_array_equal(first.W_, second.W_)
    assert first.loss_history_ == second.loss_history_ and not np.array_equal(first.W_, other.W_)


def test_given_codes_are_the_targets(model_and_data):
    model, X, _ = model_and_data
    Z = model.transform(X)
    a = LISTA(model, 2, n_epochs=2, random_state=0).fit(X)
    b = LISTA(model, 2, n_epochs=2, random_state=0).fit(X, Z)
    np.testing.assert_array_equal(a.W_, b.W_)
    c = LISTA(model, 2, n_epochs=2, random_state=0).fit(X, np.zeros_like(Z))
    assert not np.array_equal(a.W_, c.W_)


# -- backends and precision -----------------------------------------------------------------------------------


def test_float32_works(model_and_data):
    _, X, X_test = model_and_data
    model32 = fitted(X.astype(np.float32), dtype="float32")
    exact = model32.transform(X_test)
    for encoder in (
        ShrinkageEncoder(model32, n_epochs=10, learning_rate=1e-2, random_state=0),
        LISTA(model32, 3, n_epochs=10, learning_rate=1e-2, random_state=0),
    ):
        codes = encoder.fit(X).transform(X_test)
        assert codes.dtype == np.float32 and encoder.W_.dtype == np.float32
        assert all(np.isfinite(encoder.loss_history_)) and encoder.loss_history_[-1] < encoder.loss_history_[0]
        assert relative_error(codes, exact) < 0.9
    # untrained LISTA is ISTA in float32 too, to float32's accuracy
    ista = LISTA(model32, 4, n_epochs=0).fit(X).transform(X_test)
    model64 = type("Model", (), {k: getattr(model32, k) for k in ("lambda_d", "lambda_e", "lambda_s")})()
    model64.D_, model64.E_ = model32.D_.astype(np.float64), model32.E_.astype(np.float64)
    np.testing.assert_allclose(ista, ista_by_hand(X_test, model64, 4), atol=1e-5)


def test_array_api_strict_gives_the_same_as_numpy():
    X = data(200, seed=3)
    reference = fitted(X)
    strict = fitted(X, backend="array_api_strict")
    for make in (
        lambda m: ShrinkageEncoder(m, n_epochs=4, batch_size=50, learning_rate=1e-2, random_state=0),
        lambda m: LISTA(m, 3, n_epochs=4, batch_size=50, learning_rate=1e-2, random_state=0),
    ):
        expected = make(reference).fit(X).transform(X)
        encoder = make(strict).fit(xps.asarray(X))
        codes = encoder.transform(xps.asarray(X))
        assert isinstance(codes, type(xps.asarray(0.0)))
        np.testing.assert_allclose(np.from_dlpack(codes), expected, atol=1e-9)
        np.testing.assert_allclose(encoder.loss_history_, make(reference).fit(X).loss_history_, rtol=1e-9)


# -- use ---------------------------------------------------------------------------------------------------


def test_an_encoder_is_a_model_for_denoise():
    rng = np.random.default_rng(4)
    image = rng.random((16, 16))
    X, _ = centered_patches(image, 4, 2)
    model = fitted(X, n_atoms=20, lambda_e=0.5, lambda_s=0.05)
    lista = LISTA(model, 2, n_epochs=0).fit(X)
    rebuilt, codes = denoise(image, lista, 4, 2, return_codes=True)
    np.testing.assert_allclose(codes, lista.transform(X))

    class TwoIstaSteps:  # the same coder, written out
        def transform(self, X):
            return ista_by_hand(X, model, 2)

        def inverse_transform(self, Z):
            return Z @ model.D_.T

    by_hand = denoise(image, TwoIstaSteps(), 4, 2)
    np.testing.assert_allclose(rebuilt, by_hand, atol=1e-12)


# -- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda m: LISTA(m, 0), "n_layers must be an integer ≥ 1, got 0"),
        (lambda m: LISTA(m, 2.5), "n_layers must be an integer"),
        (lambda m: LISTA(m, n_epochs=-1), "n_epochs must be an integer ≥ 0, got -1"),
        (lambda m: ShrinkageEncoder(m, batch_size=0), "batch_size must be an integer ≥ 1, got 0"),
        (lambda m: ShrinkageEncoder(m, learning_rate=0.0), "learning_rate must be a finite real number > 0.0"),
        (lambda m: ShrinkageEncoder(m, random_state=-1), "random_state must be None"),
        (lambda m: LISTA(EnergyAutoEncoder(4)), "model must be a fitted EnergyAutoEncoder"),
    ],
)
def test_bad_settings_name_the_parameter(model_and_data, make, match):
    model, X, _ = model_and_data
    with pytest.raises(ValueError, match=match):
        make(model).fit(X)


def test_bad_data_name_the_parameter(model_and_data):
    model, X, _ = model_and_data
    encoder = LISTA(model, 2, n_epochs=1)
    with pytest.raises(ValueError, match="not fitted yet"):
        encoder.transform(X)
    with pytest.raises(ValueError, match="X has 5 features, but the model's atoms have 8"):
        encoder.fit(X[:, :5])
    with pytest.raises(ValueError, match=r"Z must have shape \(300, 12\)"):
        encoder.fit(X, np.zeros((300, 11)))
    with pytest.raises(ValueError, match="X contains NaN"):
        encoder.fit(np.full_like(X, np.nan))
    encoder.fit(X)
    with pytest.raises(ValueError, match="X has 7 features"):
        encoder.transform(X[:, :7])
    with pytest.raises(ValueError, match=r"E must have shape \(3, 2\)"):
        ista_weights(np.eye(2, 3), np.eye(2, 3), lambda_d=1.0, lambda_e=1.0, lambda_s=1.0)
    with pytest.raises(ValueError, match=r"lambda_s must be a finite real number ≥ 0\.0"):
        ista_weights(np.eye(2), np.eye(2), lambda_d=1.0, lambda_e=1.0, lambda_s=-1.0)
    with pytest.raises(ValueError, match="L would be 0"):
        ista_weights(np.zeros((2, 2)), np.eye(2), lambda_d=1.0, lambda_e=0.0, lambda_s=1.0)


def test_one_layer_lista_keeps_istas_s(model_and_data):
    # S is never applied with one layer: its gradient is 0 and training leaves it where ISTA put it.
    model, X, _ = model_and_data
    lista = LISTA(model, 1, n_epochs=3, learning_rate=1e-2, random_state=0).fit(X)
    lambdas = {name: getattr(model, name) for name in ("lambda_d", "lambda_e", "lambda_s")}
    W, S, theta = ista_weights(model.D_, model.E_, **lambdas)
    np.testing.assert_array_equal(lista.S_, S)
    assert not np.array_equal(lista.W_, W) and not np.array_equal(lista.theta_[0], theta)
