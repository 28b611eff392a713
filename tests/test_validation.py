"""The shared helpers at the public doors: check_random_state, check_array and to_namespace."""

import array_api_strict as xps
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eaelib._array import get_namespace, to_namespace
from eaelib._validation import check_array, check_random_state
from eaelib.denoising import add_noise
from eaelib.learning import initialize
from eaelib.synthetic import sparse_dataset


@given(st.integers(0, 2**63))
def test_a_seed_gives_one_stream(seed):
    a, b = check_random_state(seed), check_random_state(seed)
    assert isinstance(a, np.random.Generator)
    np.testing.assert_array_equal(a.standard_normal(5), b.standard_normal(5))


def test_a_generator_is_used_as_is_and_none_is_fresh():
    rng = np.random.default_rng(0)
    assert check_random_state(rng) is rng
    fresh = [check_random_state(None).standard_normal(3) for _ in range(2)]
    assert not np.array_equal(*fresh)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, np.random.RandomState(0), [1, 2]])
def test_bad_random_states_name_the_parameter(bad):
    with pytest.raises(ValueError, match=r"seed must be None, an integer ≥ 0 or a numpy.random.Generator"):
        check_random_state(bad, "seed")


def test_every_random_function_uses_the_one_check():
    X = np.ones((4, 6))
    calls = (lambda r: initialize(X, 3, r), lambda r: add_noise(X, 0.1, r), lambda r: sparse_dataset(4, 3, 6, 0.5, r))
    for call in calls:
        np.testing.assert_array_equal(call(7)[1], call(np.random.default_rng(7))[1])
        with pytest.raises(ValueError, match="random_state must be None"):
            call(-1)


def test_to_namespace_moves_between_libraries_and_casts():
    x = np.arange(6.0).reshape(2, 3)
    strict = get_namespace(xps.asarray(x))
    y = to_namespace(x, strict, dtype=strict.float32)
    assert get_namespace(y) is strict and y.dtype == strict.float32
    back = to_namespace(y, get_namespace(x))
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    np.testing.assert_array_equal(back, x)
    assert to_namespace(x, get_namespace(x)) is x  # already there: no copy


def test_check_array_converts_to_the_requested_namespace():
    strict = get_namespace(xps.asarray([0.0]))
    xp, X = check_array([[1, 2], [3, 4]], xp=strict, device=xps.Device("CPU_DEVICE"))
    assert xp is strict and get_namespace(X) is strict and X.dtype == strict.float64
