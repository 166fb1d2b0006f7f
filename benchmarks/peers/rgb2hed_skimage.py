"""The scikit-image peer of `histoflow bench stain`, case rgb2hed-*:
skimage.color.rgb2hed (Ruifrok & Johnston colour deconvolution) on every
image of the batch, float64 as scikit-image computes it.

Usage: rgb2hed_skimage.py RAW N H W REPEATS WARMUP
Times itself (first run apart, WARMUP untimed runs, REPEATS timed runs,
median) and prints one JSON object. Run it single-threaded.
"""
import json
import platform
import statistics
import sys
import time

import numpy as np
import skimage
from skimage.color import rgb2hed


def main():
    raw, n, h, w, repeats, warmup = sys.argv[1], *map(int, sys.argv[2:7])
    batch = np.fromfile(raw, dtype=np.uint8).reshape((n, h, w, 3))

    def once():
        for img in batch:
            rgb2hed(img)

    t0 = time.perf_counter()
    once()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        once()
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
        "skimage": skimage.__version__,
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
