"""The numpy peer of `histoflow bench stain`: HEnorm_python's normalizeStaining
(Macenko et al. 2009), exactly the recipe of /work/shared/data/SOURCES.md:
Io=240, alpha=1, beta=0.15, reference HE and maxC of HEnorm_python,
OD = -ln((I+1)/Io), pixels kept when every channel OD >= beta, eigenvectors of
the OD covariance, angle percentiles alpha / 100-alpha (linear interpolation),
hematoxylin = the vector with the larger red OD, C = least squares,
maxC = 99th percentile, output Io*exp(-HERef*C*maxCRef/maxC), values > 255
set to 254, cast to uint8. Fit + transform of every image, no H/E images.

An image with fewer than 2 tissue pixels (where the original would fail) is
copied unchanged, as histoflow does.

With HISTOFLOW_PEER_WORKERS=N (worker_pool.py) the images are split over N
forked processes, each running the same code on its share.

Usage: macenko_numpy.py RAW N H W REPEATS WARMUP [OUT_RAW]
RAW: N*H*W*3 bytes of interleaved RGB. Times itself (first run apart, WARMUP
untimed runs, REPEATS timed runs, median) and prints one JSON object.
Run it single-threaded: OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1.
"""
import json
import platform
import sys

import numpy as np

from timing import time_calls
from worker_pool import chunk_bounds, fork_pool, peer_workers

HE_REF = np.array([[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]])
MAX_C_REF = np.array([1.9705, 1.0308])


def normalize_staining(img, Io=240, alpha=1, beta=0.15):
    h, w, _ = img.shape
    img = img.reshape((-1, 3))
    OD = -np.log((img.astype(np.float64) + 1) / Io)
    ODhat = OD[~np.any(OD < beta, axis=1)]
    if ODhat.shape[0] < 2:
        return img.reshape((h, w, 3)).copy()
    _, eigvecs = np.linalg.eigh(np.cov(ODhat.T))
    That = ODhat.dot(eigvecs[:, 1:3])
    phi = np.arctan2(That[:, 1], That[:, 0])
    minPhi = np.percentile(phi, alpha)
    maxPhi = np.percentile(phi, 100 - alpha)
    vMin = eigvecs[:, 1:3].dot(np.array([(np.cos(minPhi), np.sin(minPhi))]).T)
    vMax = eigvecs[:, 1:3].dot(np.array([(np.cos(maxPhi), np.sin(maxPhi))]).T)
    if vMin[0] > vMax[0]:
        HE = np.array((vMin[:, 0], vMax[:, 0])).T
    else:
        HE = np.array((vMax[:, 0], vMin[:, 0])).T
    Y = np.reshape(OD, (-1, 3)).T
    C = np.linalg.lstsq(HE, Y, rcond=None)[0]
    maxC = np.array([np.percentile(C[0, :], 99), np.percentile(C[1, :], 99)])
    tmp = np.divide(maxC, MAX_C_REF)
    C2 = np.divide(C, tmp[:, np.newaxis])
    Inorm = np.multiply(Io, np.exp(-HE_REF.dot(C2)))
    Inorm[Inorm > 255] = 254
    return np.reshape(Inorm.T, (h, w, 3)).astype(np.uint8)


def normalize_batch(batch):
    return np.stack([normalize_staining(im) for im in batch])


BATCH = None  # the batch, for forked workers


def normalize_chunk(bounds):
    return normalize_batch(BATCH[bounds[0]:bounds[1]])


def main(argv):
    if len(argv) not in (7, 8):
        sys.stderr.write(__doc__)
        return 2
    path, n, h, w, repeats, warmup = argv[1], *map(int, argv[2:7])
    batch = np.fromfile(path, dtype=np.uint8)
    if batch.size != n * h * w * 3:
        sys.stderr.write(f"Expected {n * h * w * 3} bytes in {path} but read {batch.size}\n")
        return 2
    batch = batch.reshape((n, h, w, 3))
    workers = peer_workers()

    if workers > 1:
        global BATCH
        BATCH = batch
        bounds = chunk_bounds(n, workers)
        with fork_pool(workers) as pool:
            out, timing = time_calls(lambda: np.concatenate(pool.map(normalize_chunk, bounds)), repeats, warmup)
    else:
        out, timing = time_calls(lambda: normalize_batch(batch), repeats, warmup)
    if len(argv) == 8:
        out.tofile(argv[7])
    print(json.dumps({
        **timing,
        "workers": workers,
        "pixels": n * h * w,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
