"""The preload of the workers of :func:`eaelib.distributed.local_cluster`: they ignore Ctrl-C.

The cluster's first workers are started with SIGINT ignored and keep it so; a worker that the cluster
restarts later (after one died) is started while the client handles SIGINT, and would get Python's
KeyboardInterrupt handler: this sets it back to ignored as the worker starts. Dask imports this module
in each worker (``preload``) and calls :func:`dask_setup` there.
"""

import signal


def dask_setup(worker):
    """Ignore SIGINT in this worker process: a terminal's Ctrl-C is for the client."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
