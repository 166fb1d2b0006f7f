"""The scikit-image peer of `histoflow bench stain`, case rgb2hed-*:
skimage.color.rgb2hed (Ruifrok & Johnston colour deconvolution) on every
image of the batch, float64 as scikit-image computes it.

Usage: rgb2hed_skimage.py RAW N H W REPEATS WARMUP [OUT_F32]
Times itself (first run apart, WARMUP untimed runs, REPEATS timed runs,
median) and prints one JSON object. Run it single-threaded. OUT_F32: the
first run's output (N*H*W*3 float32, H, E, D per pixel), which the suite
compares with histoflow's.
"""
import json
import platform
import sys

import numpy as np
import skimage
from skimage.color import rgb2hed

from timing import time_calls


def main():
    raw, n, h, w, repeats, warmup = sys.argv[1], *map(int, sys.argv[2:7])
    batch = np.fromfile(raw, dtype=np.uint8).reshape((n, h, w, 3))

    def once():
        return [rgb2hed(img) for img in batch]

    first, timing = time_calls(once, repeats, warmup)
    if len(sys.argv) > 7:
        np.stack(first).astype(np.float32).tofile(sys.argv[7])
    print(json.dumps({
        **timing,
        "numpy": np.__version__,
        "skimage": skimage.__version__,
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
