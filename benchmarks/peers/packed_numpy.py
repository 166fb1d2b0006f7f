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
import sys

import numpy as np

from timing import time_calls


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

    _, timing = time_calls(once, repeats)
    print(json.dumps({
        **timing,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
