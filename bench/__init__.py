"""eaelib's benchmark suite: ``python -m bench`` (``make bench``), described in bench/README.md."""
