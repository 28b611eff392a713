"""Progress bars of the long runs (tqdm, imported where a bar is shown)."""

from __future__ import annotations

from ._optional import require


def progress_bar(total, desc, unit):
    """A tqdm bar of ``total`` steps (None: no total, so no time-left estimate)."""
    tqdm = require("tqdm.auto", "progress=True (or set progress=False)").tqdm
    return tqdm(total=total, desc=desc, unit=unit)


def with_progress(run, *, show, desc, callback=None):
    """``run(callback)`` under a bar over a fit's iterations; the bar closes however ``run`` ends.

    The bar has no total: a fit stops when its certificate says so, which no count of iterations predicts
    (``max_outer`` is a cap, mostly far from the stop), so it shows the iterations done, their rate and the
    energy, without an estimated time left. ``run`` gets a callback that draws the bar and then asks the
    user's ``callback`` (``callback(iteration, terms)``, True to stop).
    """
    bar = progress_bar(None, desc, "it") if show else None

    def both(iteration, terms):
        if bar is not None:
            bar.update(iteration - bar.n)  # online: certified epochs only, so steps of certify_every
            bar.set_postfix(energy=f"{terms['total']:.6g}")
        return bool(callback is not None and callback(iteration, terms))

    try:
        return run(both)
    finally:
        if bar is not None:
            bar.close()


def chunks(n, size, *, show, desc, unit):
    """Slices of ``range(n)``: ``size`` at a time under a bar when ``show`` and ``n > size``, else one slice."""
    if not show or n <= size:
        yield slice(0, n)
        return
    bar = progress_bar(n, desc, unit)
    try:
        for start in range(0, n, size):
            yield slice(start, min(start + size, n))
            bar.update(min(size, n - start))
    finally:
        bar.close()
