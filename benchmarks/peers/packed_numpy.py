"""The numpy peer of `histoflow bench packed`, case read-shuffled-96: the
same packed file opened with numpy.memmap (the usual way Python training
code reads a flat uint8 tile file) and read in the same shuffled batches,
each gathered into a new array by fancy indexing.

Usage: packed_numpy.py FILE PIXEL_OFFSET N H W BATCH ORDER.u32 REPEATS
ORDER.u32 is the epoch's order (little-endian uint32), as histoflow uses it.
Each timed run opens the map, gathers every batch, and touches each gathered
array (a sum of one byte per tile; the gather has already read every byte); first run apart, median of REPEATS.
Prints one JSON object.
"""
import json
import platform
import statistics
import sys
import time

import numpy as np


def main():
    path, offset, n, h, w, batch, order_path, repeats = sys.argv[1], *map(int, sys.argv[2:7]), sys.argv[7], int(sys.argv[8])
    order = np.fromfile(order_path, dtype="<u4")

    def once():
        tiles = np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=(n, h, w, 3))
        touched = 0
        for start in range(0, n, batch):
            b = tiles[order[start:start + batch]]
            touched += int(b[:, 0, 0, 0].sum())
        del tiles
        return touched

    t0 = time.perf_counter()
    once()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "median_s": statistics.median(times) if times else first,
        "first_s": first,
        "min_s": min(times) if times else first,
        "repeats": len(times),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
