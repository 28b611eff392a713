"""``python -m bench``: run the benchmark suite."""

from .runner import main

main()
