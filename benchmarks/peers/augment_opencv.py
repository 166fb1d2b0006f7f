"""The OpenCV peer of `histoflow bench augment`: the pipeline
{D4, HED jitter, brightness/contrast/saturation/hue, gaussian blur, normalize}
of native/augment/augment.h, written the way a PyTorch Dataset would with
numpy and cv2, per patch, single-threaded (cv2.setNumThreads(1)), in float32:

  D4          np.rot90 (k = d4 & 3, counter-clockwise), then np.fliplr when d4 & 4
  elastic     (when elasticAlpha > 0) albumentations' / Simard et al. 2003's way: a
              per-pixel uniform(−1, 1) field per axis (numpy, seeded by elasticSeed),
              cv2.GaussianBlur(σ = elasticSigma), scaled to histoflow's RMS
              displacement (0.28·α), cv2.remap bilinear with BORDER_REFLECT. The
              same work as histoflow's control-grid field, not the same field.
  HED jitter  scikit-image rgb2hed matrix math (OD = log(max(rgb, 1e-6)) / log(1e-6),
              @ hed_from_rgb, clip ≥ 0), s·alpha + beta, back with rgb_from_hed, clip 0..1
  colour      x·brightness; (x − mean grey)·contrast + mean grey (mean grey of the
              image before this step); grey + (x − grey)·saturation; hue by
              cv2.cvtColor RGB → HSV, H + hue·360 (mod 360), HSV → RGB; each clipped
  blur        cv2.GaussianBlur with the drawn σ (kernel radius ceil(3σ), replicated
              edges) on the patches whose drawn σ is > 0 (half of them, p 0.5)
  normalize   (x − mean) / std to float32

The per-patch parameters are histoflow's own draw (a JSON file), so both sides
do exactly the same work on the same patches. With HISTOFLOW_PEER_WORKERS=N
(worker_pool.py) the patches are split over N forked processes, as a
DataLoader with num_workers=N would.

Usage: augment_opencv.py RAW N H W PARAMS.json REPEATS WARMUP [OUT_F32]
RAW: N*H*W*3 bytes of interleaved RGB. PARAMS.json: {"params": [{d4, hedEnabled,
hedAlpha, hedBeta, brightness, contrast, saturation, hue, blurSigma, elasticAlpha,
elasticSigma, elasticSeed}, ...],
"mean": [3], "std": [3]}. Times itself (first run apart, WARMUP untimed runs,
REPEATS timed runs, median) and prints one JSON object. OUT_F32: the output
(N*H*W*3 float32) of the first run.
"""
import json
import math
import platform
import sys

import cv2
import numpy as np

from timing import time_calls
from worker_pool import chunk_bounds, fork_pool, peer_workers

cv2.setNumThreads(1)

RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED).astype(np.float32)
RGB_FROM_HED32 = RGB_FROM_HED.astype(np.float32)
LOG_ADJUST = np.float32(np.log(1e-6))
GREY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


ROTATE = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}
# cv2.transform(src, m) computes m @ pixel; the stain rows are rgb2hed's columns
HED_T = np.ascontiguousarray(HED_FROM_RGB.T)
RGB_T = np.ascontiguousarray(RGB_FROM_HED32.T)


def clip01(x):
    return np.clip(x, 0, 1, out=x)


def grey(x):
    # cv2's RGB → grey is 0.299 R + 0.587 G + 0.114 B
    return cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)


# histoflow's RMS displacement is about 0.28·α; a gaussian-smoothed
# uniform(−1, 1) field has RMS 1/(σ·sqrt(12π)) in 2-D.
ELASTIC_RMS = 0.28
GRIDS = {}


def elastic(x, alpha, sigma, seed):
    h, w = x.shape[:2]
    if (h, w) not in GRIDS:
        ys, xs = np.indices((h, w), dtype=np.float32)
        GRIDS[(h, w)] = (ys, xs)
    ys, xs = GRIDS[(h, w)]
    rng = np.random.default_rng(seed)
    scale = np.float32(ELASTIC_RMS * alpha * sigma * math.sqrt(12 * math.pi))
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return cv2.remap(x, xs + scale * dx, ys + scale * dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def augment_one(img_u8, p, mean, std):
    d4 = p["d4"]
    if d4 & 3:
        img_u8 = cv2.rotate(img_u8, ROTATE[d4 & 3])
    if d4 & 4:
        img_u8 = cv2.flip(img_u8, 1)
    x = img_u8.astype(np.float32)
    x *= np.float32(1 / 255)
    if p.get("elasticAlpha", 0) > 0:
        x = elastic(x, p["elasticAlpha"], p["elasticSigma"], p["elasticSeed"])
    if p.get("hedEnabled"):
        od = cv2.log(np.maximum(x, np.float32(1e-6)))
        od *= np.float32(1 / LOG_ADJUST)
        s = np.maximum(cv2.transform(od, HED_T), 0)
        s *= np.asarray(p["hedAlpha"], np.float32)
        s += np.asarray(p["hedBeta"], np.float32)
        t = cv2.transform(s, RGB_T)
        t *= LOG_ADJUST
        x = clip01(cv2.exp(t))
    b, c, sat, hue = p["brightness"], p["contrast"], p["saturation"], p["hue"]
    m = np.float32(grey(x).mean()) if c != 1 else np.float32(0)  # before brightness, as augment.h says
    if b != 1:
        x = clip01(x * np.float32(b))
    if c != 1:
        x = clip01((x - m) * np.float32(c) + m)
    if sat != 1:
        g = grey(x)[..., None]
        x = clip01(g + (x - g) * np.float32(sat))
    if hue != 0:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
        h = hsv[..., 0]
        h += np.float32(hue * 360)
        np.mod(h, 360, out=h)
        x = clip01(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))
    sigma = p["blurSigma"]
    if sigma > 0:
        k = 2 * math.ceil(3 * sigma) + 1
        x = cv2.GaussianBlur(x, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    x -= mean
    x /= std
    return x


def augment_batch(batch, params, mean, std, out):
    for i in range(batch.shape[0]):
        out[i] = augment_one(batch[i], params[i], mean, std)
    return out


WORK = None  # (batch, params, mean, std), for forked workers


def augment_chunk(bounds):
    batch, params, mean, std = WORK
    i0, i1 = bounds
    return augment_batch(batch[i0:i1], params[i0:i1], mean, std, np.empty((i1 - i0,) + batch.shape[1:], np.float32))


def augment_pooled(pool, bounds, out):
    for (i0, i1), part in zip(bounds, pool.map(augment_chunk, bounds)):
        out[i0:i1] = part
    return out


def main(argv):
    if len(argv) not in (8, 9):
        sys.stderr.write(__doc__)
        return 2
    path, n, h, w = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    spec = json.load(open(argv[5]))
    repeats, warmup = int(argv[6]), int(argv[7])
    batch = np.fromfile(path, dtype=np.uint8)
    if batch.size != n * h * w * 3:
        sys.stderr.write(f"Expected {n * h * w * 3} bytes in {path} but read {batch.size}\n")
        return 2
    batch = batch.reshape((n, h, w, 3))
    params = spec["params"]
    if len(params) != n:
        sys.stderr.write(f"Expected {n} parameter sets in {argv[5]} but read {len(params)}\n")
        return 2
    mean = np.asarray(spec["mean"], np.float32)
    std = np.asarray(spec["std"], np.float32)
    out = np.empty((n, h, w, 3), np.float32)

    # Every call computes the same output (the parameters are given), so the
    # buffer after timing is what the parity check reads.
    workers = peer_workers()
    if workers > 1:
        global WORK
        WORK = (batch, params, mean, std)
        bounds = chunk_bounds(n, workers)
        with fork_pool(workers) as pool:
            _, timing = time_calls(lambda: augment_pooled(pool, bounds, out), repeats, warmup)
    else:
        _, timing = time_calls(lambda: augment_batch(batch, params, mean, std, out), repeats, warmup)
    if len(argv) == 9:
        out.tofile(argv[8])
    print(json.dumps({
        **timing,
        "workers": workers,
        "patches": n,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cv2": cv2.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
