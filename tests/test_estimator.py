"""EnergyAutoEncoder: properties over random problems (hypothesis), and its errors and identities."""

from __future__ import annotations

import inspect
import math
import warnings
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eaelib import EnergyAutoEncoder, constraint_violation
from eaelib.__main__ import build_parser
from eaelib._base import ConvergenceWarning, DataConversionWarning, NotFittedError
from eaelib._cli import OPTIONS, default_of, model_params
from eaelib._validation import param_specs

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

# -- properties over random problems --------------------------------------------------


# Smallest positive weight drawn. Far smaller ones are not supported: hypothesis found lambda_e=1.2e-38
# (float32's tiny) with lambda_d=lambda_s=0, where the E-subproblem's Lipschitz constant is 1.9e-44 and the
# FISTA step 1/L = 5e43 overflows float32 ("RuntimeWarning: overflow encountered in cast", fista.py).
MIN_WEIGHT = 1e-6


def _weight(high):
    # Exact zeros often (a term switched off), otherwise any value in [MIN_WEIGHT, high].
    return st.one_of(st.just(0.0), st.floats(min_value=MIN_WEIGHT, max_value=high))


@st.composite
def problems(draw):
    n_samples = draw(st.integers(1, 40))
    n_features = draw(st.integers(1, 8))
    weights = draw(
        st.fixed_dictionaries(dict(lambda_d=_weight(100.0), lambda_e=_weight(100.0), lambda_s=_weight(100.0))).filter(
            lambda w: any(v > 0 for v in w.values())
        )
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1e-2, 1.0, 1e2, 1e3]))
    X = scale * rng.standard_normal((n_samples, n_features))
    params = dict(
        n_atoms=draw(st.integers(1, 12)),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        random_state=draw(st.integers(0, 2**32 - 1)),
        max_outer=draw(st.integers(1, 10)),
        max_inner=draw(st.sampled_from([1, 5, 30, 100])),  # 100 is the default; fewer truncate the inner solves
        **weights,
    )
    return X, params


def _column_norms(M):
    return np.linalg.norm(np.asarray(M, dtype=np.float64), axis=0)


# The fits are short on purpose (max_outer ≤ 10): stopping at the cap is expected, its warning is tested below.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_fit_properties(problem):
    """Over random shapes, dtypes, weights (0 to 100), data scales (1e-3 to 1e3), outer and inner caps: the
    energy never rises, the constraints hold, the results are finite and of the dtype, and repeatable."""
    X, params = problem
    model = EnergyAutoEncoder(**params).fit(X, allow_few_samples=True)  # the shapes are random, on purpose
    dtype = np.dtype(params["dtype"])
    n_samples, n_features = X.shape
    m = params["n_atoms"]

    # The energy history never increases, not even by rounding.
    history = model.objective_history_
    assert len(history) == model.n_iter_ + 1
    assert 1 <= len(history) <= params["max_outer"] + 1
    for k, (before, after) in enumerate(pairwise(history), start=1):
        assert after <= before, f"energy rose at outer iteration {k}: {before!r} -> {after!r}"
    assert all(math.isfinite(v) and v >= 0 for v in history)
    for terms, total in zip(model.energy_history_, history, strict=True):
        assert terms["total"] == total

    # Every constraint holds: columns of D_ and E_ in the unit ball.
    assert model.D_.shape == (n_features, m) and model.E_.shape == (m, n_features)
    assert constraint_violation(model.D_, model.E_) <= 1e-6
    assert np.all(_column_norms(model.D_) <= 1 + 1e-6)
    assert np.all(_column_norms(model.E_) <= 1 + 1e-6)

    # Finite results of the requested dtype.
    outputs = dict(D_=model.D_, E_=model.E_)
    for method in ("exact", "encoder"):
        outputs[method] = model.transform(X, method=method)
        assert outputs[method].shape == (n_samples, m)
    outputs["inverse"] = model.inverse_transform(outputs["exact"])
    for name, value in outputs.items():
        assert value.dtype == dtype, name
        assert np.all(np.isfinite(value)), name

    # The same random_state gives bit-identical results.
    again = EnergyAutoEncoder(**params).fit(X, allow_few_samples=True)
    np.testing.assert_array_equal(again.D_, model.D_)
    np.testing.assert_array_equal(again.E_, model.E_)
    assert again.objective_history_ == history
    assert again.n_iter_ == model.n_iter_
    np.testing.assert_array_equal(again.transform(X), outputs["exact"])


# -- parameter validation ---------------------------------------------------------------

X_SMALL = np.random.default_rng(0).standard_normal((20, 3))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(n_atoms=0), "n_atoms"),
        (dict(n_atoms=2.5), "n_atoms"),
        (dict(n_atoms=True), "n_atoms"),
        (dict(lambda_d=-1.0), "lambda_d"),
        (dict(lambda_e=-0.5), "lambda_e"),
        (dict(lambda_s=float("nan")), "lambda_s"),
        (dict(lambda_g=float("inf")), "lambda_g"),
        (dict(lambda_d=0.0, lambda_e=0.0, lambda_s=0.0), "lambda_d, lambda_e and lambda_s cannot all be 0"),
        (dict(max_outer=0), "max_outer"),
        (dict(max_inner=1.5), "max_inner"),
        (dict(rtol=-1e-3), "rtol"),
        (dict(inner_rtol=float("nan")), "inner_rtol"),
        (dict(backend="torch"), "backend"),
        (dict(dtype="float16"), "dtype"),
    ],
)
def test_invalid_parameters_are_named(params, match):
    model = EnergyAutoEncoder(**{"max_outer": 2, **params})  # __init__ only stores them
    with pytest.raises(ValueError, match=match):
        model.fit(X_SMALL)


def test_graph_weight_needs_a_laplacian():
    with pytest.raises(ValueError, match="laplacian"):
        EnergyAutoEncoder(n_atoms=4, lambda_g=1.0, max_outer=2).fit(X_SMALL)


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short fit, on purpose
        return EnergyAutoEncoder(n_atoms=5, max_outer=5, random_state=0).fit(X_SMALL)


def test_bogus_transform_method(fitted):
    with pytest.raises(ValueError, match=r"method must be one of \('exact', 'encoder'\), got 'bogus'"):
        fitted.transform(X_SMALL, method="bogus")


def test_not_fitted():
    # eaelib._base.NotFittedError is scikit-learn's where it is installed, its stand-in otherwise.
    model = EnergyAutoEncoder()
    for call in (
        lambda: model.transform(X_SMALL),
        lambda: model.transform(X_SMALL, method="encoder"),
        lambda: model.inverse_transform(X_SMALL),
        lambda: model.energy(X_SMALL),
        lambda: model.components_,
    ):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()


def test_wrong_number_of_features(fitted):
    for method in ("exact", "encoder"):
        with pytest.raises(ValueError, match="X has 4 features, but EnergyAutoEncoder is expecting 3 features"):
            fitted.transform(np.ones((2, 4)), method=method)
    with pytest.raises(ValueError, match="X has 2 features, but EnergyAutoEncoder is expecting 3 features"):
        fitted.energy(np.ones((2, 2)))


def test_wrong_number_of_atoms(fitted):
    with pytest.raises(ValueError, match="Z has 4 atoms, but EnergyAutoEncoder is expecting 5 atoms"):
        fitted.inverse_transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match="Z has 6 atoms"):
        fitted.energy(X_SMALL, Z=np.ones((20, 6)))
    with pytest.raises(ValueError, match="one row per sample"):
        fitted.energy(X_SMALL, Z=np.ones((19, 5)))


def test_invalid_data():
    model = EnergyAutoEncoder(n_atoms=3, max_outer=2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.fit(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        model.fit(np.ones(5))
    with pytest.raises(ValueError, match="Complex"):
        model.fit(np.ones((3, 2), dtype=complex))
    with pytest.raises(ValueError, match="at least 1 sample"):
        model.fit(np.ones((0, 2)))


# -- identities ---------------------------------------------------------------------------


def _energy_data():
    return np.random.default_rng(4).standard_normal((50, 6))


@SHORT_FIT
def test_energy_terms():
    X = _energy_data()
    model = EnergyAutoEncoder(n_atoms=8, max_outer=10, random_state=0)
    # The training codes are not kept by fit: _fit returns them (book orientation, m × N).
    training_codes = np.asarray(model._fit(X, None)).T
    history = model.objective_history_

    # With the training codes, energy() is the last entry of the history: the same terms, evaluated directly.
    terms = model.energy(X, Z=training_codes)
    assert set(terms) == {"data", "encoder", "sparsity", "graph", "total"}
    assert terms == pytest.approx(model.energy_history_[-1], rel=1e-12, abs=1e-12)
    assert terms["total"] == pytest.approx(history[-1], rel=1e-12)
    assert terms["graph"] == 0.0

    # With the transform's codes, the terms still add up ...
    terms = model.energy(X)
    assert terms["total"] == pytest.approx(terms["data"] + terms["encoder"] + terms["sparsity"] + terms["graph"])
    assert all(value >= 0 for value in terms.values())
    np.testing.assert_allclose(
        terms["data"], 0.5 * model.lambda_d * np.sum((X - model.inverse_transform(model.transform(X))) ** 2)
    )

    # ... and, solved to a tight tolerance, the exact codes minimize the Z problem that the training codes
    # only approximately solve, so the energy can only be lower. (With the default inner_rtol=1e-4 the
    # exact transform starts from zero codes and may stop above the training codes' energy.)
    model.set_params(inner_rtol=1e-12, max_inner=1000)
    assert model.energy(X)["total"] <= history[-1] * (1 + 1e-6)


def test_components_is_transposed_dictionary(fitted):
    np.testing.assert_array_equal(fitted.components_, fitted.D_.T)
    assert fitted.components_.shape == (5, 3)


@SHORT_FIT
def test_fit_transform_equals_fit_then_transform():
    params = dict(n_atoms=6, max_outer=5, random_state=2)
    codes = EnergyAutoEncoder(**params).fit_transform(X_SMALL)
    np.testing.assert_array_equal(codes, EnergyAutoEncoder(**params).fit(X_SMALL).transform(X_SMALL))


def test_encoder_transform_is_one_product(fitted):
    np.testing.assert_allclose(fitted.transform(X_SMALL, method="encoder"), X_SMALL @ fitted.E_.T, rtol=1e-12)
    np.testing.assert_allclose(fitted.inverse_transform(np.eye(5)), fitted.D_.T, rtol=1e-12)


@SHORT_FIT
@pytest.mark.parametrize("dtype", [None, "float32", "float64", np.float32])
def test_dtype_follows_parameter_or_input(dtype):
    X = X_SMALL.astype(np.float32)
    model = EnergyAutoEncoder(n_atoms=4, max_outer=2, random_state=0, dtype=dtype).fit(X)
    expected = np.float32 if dtype is None else np.dtype(dtype)
    assert model.D_.dtype == expected and model.E_.dtype == expected
    assert model.transform(X_SMALL).dtype == expected
    # Integer data becomes float64 when no dtype is asked (with a warning, tested in test_bad_input.py).
    with pytest.warns(DataConversionWarning, match="integer dtype"):
        assert EnergyAutoEncoder(n_atoms=4, max_outer=2).fit(np.arange(12).reshape(4, 3)).D_.dtype == np.float64


# -- the parameter table: one declaration per parameter drives __init__, validation, docs and the CLI ---

SPECS = param_specs(EnergyAutoEncoder)


def test_every_parameter_is_declared_once_with_a_valid_default():
    signature = inspect.signature(EnergyAutoEncoder)
    assert list(signature.parameters) == list(SPECS)
    for name, (default, spec) in SPECS.items():
        assert signature.parameters[name].default == default
        assert spec.check(name, default, default) == default
        assert f"{name} : {spec.type_doc}, default={default!r}" in EnergyAutoEncoder.__doc__
    assert list(EnergyAutoEncoder._get_param_names()) == sorted(SPECS)


@pytest.mark.parametrize("name", [n for n, (_, s) in SPECS.items() if s.kind in ("int", "real")])
def test_numeric_parameters_out_of_bounds_are_named(name):
    spec = SPECS[name][1]
    below = spec.low - 1 if spec.kind == "int" else -0.5
    with pytest.raises(ValueError, match=rf"^{name} must be (an integer|a finite real number) ≥"):
        EnergyAutoEncoder(**{name: below}).fit(X_SMALL)
    if name in OPTIONS:  # the command line refuses it with the same check, naming its option
        with pytest.raises(SystemExit):
            build_parser().parse_args(["learn", "img.png", "--out", "o", OPTIONS[name].flag, str(below)])


@pytest.mark.parametrize(
    ("name", "bad", "match"),
    [
        ("progress", "yes", r"progress must be True or False, got 'yes'"),
        ("warm_start", 1, r"warm_start must be True or False, got 1"),
        ("random_state", -1, r"random_state must be None, an integer ≥ 0 or a numpy.random.Generator, got -1"),
        ("backend", "torch", r"backend must be one of \('numpy', 'cupy', 'array_api_strict'\) or None, got 'torch'"),
        ("callback", 3, r"callback must be callable or None, got 3"),
    ],
)
def test_other_parameters_are_checked_in_fit(name, bad, match):
    model = EnergyAutoEncoder(**{name: bad})  # __init__ only stores, as scikit-learn requires
    assert getattr(model, name) == bad
    with pytest.raises(ValueError, match=match):
        model.fit(X_SMALL)


def test_the_command_line_offers_the_declared_options_with_the_estimators_defaults():
    learn = build_parser().parse_args(["learn", "img.png", "--out", "o"]).command_parser
    text = learn.format_help()
    assert set(OPTIONS) <= set(SPECS)  # the command line offers parameters, no other
    options = {option.flag: name for name, option in OPTIONS.items()}
    assert options and all(option in text for option in options)
    params, given = model_params(learn.parse_args(["img.png", "--out", "o"]))
    assert given == {}
    # The command line's own defaults: a fixed seed (the same command learns the same model) and a progress bar.
    own = {"random_state": 0, "progress": True}
    assert params == own and all(default_of(name) == value for name, value in own.items())
    for name in OPTIONS:
        assert default_of(name) == own.get(name, SPECS[name][0]), name
    params, given = model_params(learn.parse_args(["img.png", "--out", "o", "--n-atoms", "7", "--no-progress"]))
    assert given == {"n_atoms": 7, "progress": False} and params["n_atoms"] == 7


# -- honest convergence ----------------------------------------------------------------


def test_stopping_at_max_outer_warns_and_says_which_block():
    X = _energy_data()
    with pytest.warns(ConvergenceWarning, match=r"max_outer=2 before block-stationarity: the [ZDE]-block"):
        model = EnergyAutoEncoder(n_atoms=8, max_outer=2, random_state=0).fit(X)
    assert not model.converged_ and model.stop_reason_ == "max_outer" and model.n_iter_ == 2
    assert len(model.certificate_history_) == 2


def test_a_converged_fit_does_not_warn_and_is_certified():
    X = _energy_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = EnergyAutoEncoder(n_atoms=8, random_state=0).fit(X)
    assert model.converged_ and model.stop_reason_ == "converged"
    gaps = model.certificate_history_[-1]
    assert set(gaps) == {"Z", "D", "E"}
    assert max(gaps.values()) <= model.rtol * model.objective_history_[-1]


def test_warm_start_continues_the_certificates():
    X = _energy_data()
    with pytest.warns(ConvergenceWarning):
        model = EnergyAutoEncoder(n_atoms=8, max_outer=2, random_state=0, warm_start=True).fit(X)
    model.set_params(max_outer=200)
    model.fit(X)
    assert model.converged_ and len(model.certificate_history_) == model.n_iter_


def test_exact_transform_warns_at_its_cap():
    X = _energy_data()
    # FISTA's cap (the homotopy is exact: it has none to stop at).
    model = EnergyAutoEncoder(n_atoms=8, random_state=0, code_solver="fista").fit(X)
    with pytest.warns(ConvergenceWarning, match="transform stopped"):
        model.transform(X, max_iter=1)


@pytest.mark.parametrize("init", ["random", "data", "svd"])
def test_every_initialization_learns(init):
    X = _energy_data()
    model = EnergyAutoEncoder(n_atoms=8, random_state=0, init=init).fit(X)
    assert model.converged_ and constraint_violation(model.D_, model.E_) <= 1e-12
    assert all(b <= a for a, b in pairwise(model.objective_history_))


def test_the_fista_solver_for_d_and_e_is_kept():
    X = _energy_data()
    dual = EnergyAutoEncoder(n_atoms=8, max_outer=5, random_state=0)
    fista = EnergyAutoEncoder(n_atoms=8, max_outer=5, random_state=0, solver="fista")
    with pytest.warns(ConvergenceWarning):
        dual.fit(X)
    with pytest.warns(ConvergenceWarning):
        fista.fit(X)
    # Both monotone; the exact D- and E-steps lower the energy at least as fast at first.
    assert all(b <= a for a, b in pairwise(fista.objective_history_))
    assert dual.objective_history_[1] <= fista.objective_history_[1] * (1 + 1e-9)
    assert [t.subproblem for t in fista.inner_history_[:3]] == ["Z", "D", "E"]


@pytest.fixture(scope="module")
def barbara_patches():
    """8 × 8 patches of Barbara (1200 of them), in float64."""
    from eaelib import extract_patches, load_image

    return extract_patches(load_image("barbara"), size=8, stride=8)[:1200]


def test_float32_exact_codes_are_within_1e_3_lambda_s_of_optimal(barbara_patches):
    """The KKT residual of float32 exact codes, evaluated in float64, is at most 1e-3 λ_s on real patches
    (the stop of an objective-change rule left 0.2 λ_s there), and the codes are near the float64 ones."""
    X = barbara_patches
    with pytest.warns(ConvergenceWarning):
        model = EnergyAutoEncoder(n_atoms=64, max_outer=10, random_state=0).fit(X)
    D, E = model.D_, model.E_
    single = EnergyAutoEncoder(n_atoms=64, max_outer=1, random_state=0, dtype="float32")
    with pytest.warns(ConvergenceWarning):
        single.fit(X.astype(np.float32))
    single.D_, single.E_ = D.astype(np.float32), E.astype(np.float32)  # the same model, in float32
    Z32 = single.transform(X.astype(np.float32))
    assert Z32.dtype == np.float32
    lambda_s = model.lambda_s
    D32, E32 = single.D_.astype(np.float64), single.E_.astype(np.float64)
    Xb, Zb = X.T, Z32.T.astype(np.float64)
    grad = model.lambda_d * D32.T @ (D32 @ Zb - Xb) + model.lambda_e * (Zb - E32 @ Xb)
    off = np.sign(grad) * np.clip(np.abs(grad) - lambda_s, 0, None)
    kkt = np.abs(np.where(Zb == 0, off, grad + lambda_s * np.sign(Zb))).max()
    assert kkt <= 1e-3 * lambda_s
    Z64 = model.transform(X)
    assert np.abs(Z32 - Z64).max() <= 1e-3 * np.abs(Z64).max()


@pytest.mark.parametrize("code_solver", ["lars", "fista"])
def test_transform_with_a_progress_bar_codes_in_chunks_to_the_same_codes(code_solver, monkeypatch, capsys):
    import eaelib.subproblems

    X = _energy_data()
    model = EnergyAutoEncoder(n_atoms=8, max_outer=3, random_state=0, code_solver=code_solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    whole = model.transform(X)
    monkeypatch.setattr(eaelib.subproblems, "EXACT_CHUNK", 7)  # so that a few samples make several chunks
    model.set_params(progress=True)
    chunked = model.transform(X)
    bar = capsys.readouterr().err
    assert "exact codes: 100%" in bar and f"{X.shape[0]}/{X.shape[0]}" in bar
    if code_solver == "lars":  # exact codes, column by column: the chunks change only the products' rounding
        np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-14)
    else:  # FISTA iterates each chunk until its own columns meet the tolerance (1e-6 of lambda_s)
        np.testing.assert_allclose(chunked, whole, atol=1e-5)
    model.set_params(progress=False)
    model.transform(X)
    assert capsys.readouterr().err == ""


def test_the_progress_bar_of_fit_claims_no_total_and_is_closed_when_the_fit_stops_early(capsys):
    X = _energy_data()
    model = EnergyAutoEncoder(n_atoms=8, max_outer=200, random_state=0, progress=True, callback=lambda k, t: k == 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    bar = capsys.readouterr().err
    assert model.n_iter_ == 3 and "outer iterations: 3it" in bar, bar
    assert "%" not in bar and "/200" not in bar  # no share of max_outer, no time left estimated from it
