"""PatchStream (eaelib.streams): every patch once per epoch, shuffled, with memory bounded by batch and pool."""

import itertools
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eaelib
from eaelib import EnergyAutoEncoder, PatchStream, extract_patches, image_files

# Fits stopped at max_outer on purpose (short and fast): their ConvergenceWarning is expected, not the point.
SHORT_FIT = pytest.mark.filterwarnings("ignore::eaelib._base.ConvergenceWarning")

PIL = pytest.importorskip("PIL.Image")


def random_images(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random(shape) for shape in shapes]


def visits(stream, epoch):
    """``(image, row, col)`` of every patch of the epoch's plan, in order."""
    out = []
    for batch in stream.plan(epoch):
        for segment in batch:
            rows, cols = stream.positions(segment)
            out += [(segment.image, int(r), int(c)) for r, c in zip(rows, cols, strict=True)]
    return out


def every_position(stream):
    out = []
    for k, shape in enumerate(stream.shapes):
        rows, cols = eaelib.patch_grid(shape, stream.size, stream.stride)
        out += [(k, i * stream.stride, j * stream.stride) for i in range(rows) for j in range(cols)]
    return out


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(5, 30), st.integers(5, 30)), min_size=1, max_size=6),
    size=st.integers(1, 5),
    stride=st.integers(1, 4),
    batch_size=st.integers(1, 50),
    pool=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    shuffle=st.booleans(),
)
def test_every_patch_of_every_image_once_per_epoch(shapes, size, stride, batch_size, pool, seed, shuffle):
    stream = PatchStream(
        random_images(shapes), size, stride, batch_size=batch_size, pool=pool, random_state=seed, shuffle=shuffle
    )
    expected = sorted(every_position(stream))
    assert stream.n_patches == len(expected)
    for epoch in (0, 1):
        seen = visits(stream, epoch)
        assert sorted(seen) == expected  # each exactly once: same multiset as the full list of positions
        sizes = [sum(s.count for s in batch) for batch in stream.plan(epoch)]
        assert len(sizes) == len(stream) and all(b == batch_size for b in sizes[:-1]) and 0 < sizes[-1] <= batch_size


def test_batches_are_the_patches_of_the_plan():
    images = random_images([(20, 31), (17, 17, 3), (12, 12)])
    stream = PatchStream(images, size=6, stride=2, batch_size=13, random_state=0, pool=2)
    grids = [extract_patches(image, 6, 2) for image in images]
    for batch, plan in zip(stream.batches(0), stream.plan(0), strict=True):
        expected = []
        for segment in plan:
            rows, cols = stream.positions(segment)
            n_cols = eaelib.patch_grid(stream.shapes[segment.image], 6, 2)[1]
            expected.append(grids[segment.image][(rows // 2) * n_cols + cols // 2])
        np.testing.assert_array_equal(batch, np.concatenate(expected))


def test_the_same_seed_gives_the_same_epochs_and_epochs_differ():
    images = random_images([(30, 30), (25, 40)])
    a, b = (PatchStream(images, 8, 2, batch_size=50, random_state=7) for _ in range(2))
    first_a, first_b = list(a), list(b)
    assert all(np.array_equal(x, y) for x, y in zip(first_a, first_b, strict=True))
    second_a = list(a)  # the next epoch: shuffled anew
    assert not np.array_equal(np.concatenate(first_a), np.concatenate(second_a))
    np.testing.assert_array_equal(np.sort(np.concatenate(first_a), axis=0), np.sort(np.concatenate(second_a), axis=0))


@SHORT_FIT
@pytest.mark.filterwarnings("ignore:image has floating values:UserWarning")  # image k is all k: readable
def test_a_shuffled_batch_mixes_the_open_images():
    images = [np.full((40, 40), float(k)) for k in range(8)]  # image k's patches are all k
    stream = PatchStream(images, 4, 1, batch_size=256, random_state=0, pool=4)
    first = next(iter(stream))
    assert len(np.unique(first[:, 0])) == 4  # from the 4 open images at once, not one after the other


def test_without_shuffle_the_order_is_extract_patches():
    images = random_images([(20, 25), (13, 13)])
    stream = PatchStream(images, 5, 3, batch_size=7, shuffle=False)
    expected = np.concatenate([extract_patches(image, 5, 3) for image in images])
    np.testing.assert_array_equal(np.concatenate(list(stream)), expected)
    np.testing.assert_array_equal(np.concatenate(list(stream.in_order())), expected)


def test_centring_removes_each_patch_mean():
    image = random_images([(30, 30)])[0]
    stream = PatchStream([image], 6, 3, center=True, shuffle=False, batch_size=1000)
    (batch,) = list(stream)
    centred, _ = eaelib.centered_patches(image, 6, 3)
    np.testing.assert_allclose(batch, centred, atol=1e-15)


def test_files_colour_and_gray_are_read_as_load_image_reads_them(tmp_path):
    rng = np.random.default_rng(0)
    colour = (rng.random((20, 24, 3)) * 255).astype(np.uint8)
    gray = (rng.random((16, 16)) * 255).astype(np.uint8)
    PIL.fromarray(colour).save(tmp_path / "a.png")
    PIL.fromarray(gray).save(tmp_path / "b.png")
    (tmp_path / "README.txt").write_text("not an image, and not an image's extension: left out")
    files = image_files(tmp_path)
    assert [f.name for f in files] == ["a.png", "b.png"]
    with pytest.warns(UserWarning, match=r"a.png' is a colour image \(RGB\): read as gray"):
        from_files = PatchStream(files, 4, 4, shuffle=False, batch_size=100)
    assert from_files.shapes == [(20, 24), (16, 16)]
    arrays = [eaelib.load_image(f, quiet=True) for f in files]
    np.testing.assert_array_equal(
        np.concatenate(list(from_files)), np.concatenate(list(PatchStream(arrays, 4, 4, shuffle=False, batch_size=100)))
    )
    assert [Path(f).name for f in image_files(str(tmp_path / "*.png"), "barbara")] == ["a.png", "b.png", "barbara"]


def test_memory_is_bounded_by_batch_and_pool_not_by_the_number_of_patches():
    def peak(n_images):
        stream = PatchStream(random_images([(64, 64)] * n_images), 8, 1, batch_size=256, random_state=0, pool=4)
        tracemalloc.start()
        count = sum(batch.shape[0] for batch in stream)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return count, top

    small, large = peak(4), peak(32)
    assert large[0] == 8 * small[0]  # 8 times the patches
    assert large[1] < 1.5 * small[1], (small, large)  # about the same peak


def test_fit_and_partial_fit_learn_from_a_stream():
    image = eaelib.load_image("barbara")[:120, :120]
    params = dict(n_atoms=12, algorithm="online", random_state=0, max_outer=2)
    stream = PatchStream([image], 6, 6, batch_size=100, shuffle=False)
    X = extract_patches(image, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_outer reached
        from_stream = EnergyAutoEncoder(**params).fit(stream)
        in_memory = EnergyAutoEncoder(**params, batch_size=100, shuffle=False).fit(X)
    # The same batches in the same order from the same start: the same model.
    np.testing.assert_array_equal(from_stream.D_, in_memory.D_)
    np.testing.assert_array_equal(from_stream.E_, in_memory.E_)
    np.testing.assert_allclose(from_stream.objective_history_, in_memory.objective_history_, rtol=1e-12)
    stepped = EnergyAutoEncoder(**params).partial_fit(stream)
    by_hand = EnergyAutoEncoder(**params)
    for batch in PatchStream([image], 6, 6, batch_size=100, shuffle=False):
        by_hand.partial_fit(batch)
    assert stepped.n_steps_ == by_hand.n_steps_ == len(stream)
    np.testing.assert_array_equal(stepped.D_, by_hand.D_)


def test_a_shuffled_stream_fit_lowers_the_energy_every_epoch():
    images = [eaelib.load_image("barbara")[:100, :100], eaelib.load_image("barbara")[300:380, 400:500]]
    stream = PatchStream(images, 6, 3, center=True, batch_size=128, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = EnergyAutoEncoder(n_atoms=16, algorithm="online", random_state=0, max_outer=3).fit(stream)
    history = model.objective_history_
    assert all(b < a for a, b in itertools.pairwise(history)), history
    assert model.n_features_in_ == 36 and model.n_steps_ == model.n_iter_ * len(stream)


def test_a_stream_needs_the_online_algorithm():
    stream = PatchStream(random_images([(20, 20)]), 4)
    with pytest.raises(ValueError, match="set algorithm='online'"):
        EnergyAutoEncoder(n_atoms=4).fit(stream)
