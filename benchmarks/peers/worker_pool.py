"""The peers' "all cores" configuration: what a Python user does to use every
core for per-image work (a torch DataLoader with num_workers=N, or
multiprocessing.Pool): the batch split into contiguous chunks, one forked
process per core, each running the same single-threaded code on its chunk,
outputs gathered back in order (their transfer is part of the timed work, as
it is for a DataLoader).

HISTOFLOW_PEER_WORKERS=N selects it (1 or unset: the plain loop in-process).
The pool is started before timing; its first use is in the first, cold call.
"""
import multiprocessing
import os


def peer_workers():
    raw = os.environ.get("HISTOFLOW_PEER_WORKERS", "1")
    n = int(raw)
    if n < 1:
        raise ValueError(f"Expected an integer >= 1 for HISTOFLOW_PEER_WORKERS but received {raw}")
    return n


def chunk_bounds(n, workers):
    """Contiguous [start, end) ranges, as even as possible, at most `workers` of them."""
    parts = max(1, min(n, workers))
    return [(n * k // parts, n * (k + 1) // parts) for k in range(parts)]


def fork_pool(workers):
    # fork: the children see the batch the parent already read, without pickling it
    return multiprocessing.get_context("fork").Pool(workers)
