"""The openslide-python peer of `histoflow bench tile`: what a user would write
with OpenSlide's DeepZoom generator to cut a slide into tissue tiles.

  read    openslide.deepzoom.DeepZoomGenerator(slide, tile_size=SIZE, overlap=0,
          limit_bounds=False), full-resolution DeepZoom level, get_tile per grid cell
  filter  a tissue mask on a thumbnail, as histoflow does: slide.get_thumbnail with
          the longer side THUMB px, HSV saturation (PIL), Otsu's threshold (numpy,
          256 bins); a tile is kept when the fraction of mask pixels whose centres
          fall inside it is >= MIN_TISSUE, computed before the tile is read
  encode  PIL PNG (compress_level 6, libpng's default and sharp's), one file a tile
          into OUTDIR, single process (what a plain script does)

Only full tiles (inside the slide) are considered, as histoflow's grid does.

Usage: tile_openslide.py SLIDE SIZE THUMB MIN_TISSUE OUTDIR REPEATS
Prints one JSON object: tiles kept, grid cells, the per-slide setup (open,
thumbnail, mask) and the tile loop in seconds (medians), tiles/s of the loop
(the rate that scales with slide size) and end to end.
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import openslide
from openslide.deepzoom import DeepZoomGenerator


def otsu(values):
    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    return int(np.argmax(between))


def tissue_mask(slide, thumb):
    w0, h0 = slide.dimensions
    image = slide.get_thumbnail((thumb, thumb))
    saturation = np.asarray(image.convert("HSV"))[:, :, 1]
    mask = (saturation > otsu(saturation)).astype(np.float32)
    return mask, w0 / image.size[0]


def run(slide_path, size, thumb, min_tissue, outdir):
    t0 = time.perf_counter()
    slide = openslide.OpenSlide(slide_path)
    mask, downsample = tissue_mask(slide, thumb)
    dz = DeepZoomGenerator(slide, tile_size=size, overlap=0, limit_bounds=False)
    level = dz.level_count - 1
    width, height = dz.level_dimensions[level]
    cols, rows = width // size, height // size
    mh, mw = mask.shape
    # mask pixel centres in level-0 px
    cy = (np.arange(mh) + 0.5) * downsample
    cx = (np.arange(mw) + 0.5) * downsample
    kept = 0
    t1 = time.perf_counter()  # per-slide setup (open, thumbnail, mask) ends here
    for row in range(rows):
        ys = np.nonzero((cy >= row * size) & (cy < (row + 1) * size))[0]
        for col in range(cols):
            xs = np.nonzero((cx >= col * size) & (cx < (col + 1) * size))[0]
            if len(ys) == 0 or len(xs) == 0:
                continue
            fraction = mask[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1].mean()
            if fraction < min_tissue:
                continue
            tile = dz.get_tile(level, (col, row))
            tile.save(os.path.join(outdir, f"{col}_{row}.png"), compress_level=6)
            kept += 1
    slide.close()
    return kept, rows * cols, t1 - t0, time.perf_counter() - t1


def main():
    slide_path, size, thumb, min_tissue, outdir, repeats = sys.argv[1:7]
    size, thumb, min_tissue, repeats = int(size), int(thumb), float(min_tissue), int(repeats)
    os.makedirs(outdir, exist_ok=True)
    run(slide_path, size, thumb, min_tissue, outdir)  # warm-up (file cache, imports)
    setups, loops = [], []
    for _ in range(repeats):
        kept, cells, setup, loop = run(slide_path, size, thumb, min_tissue, outdir)
        setups.append(setup)
        loops.append(loop)
    setup, loop = statistics.median(setups), statistics.median(loops)
    print(json.dumps({
        "tiles": kept, "cells": cells, "setup_s": setup, "tiles_s": loop,
        "tiles_per_s": kept / loop, "end_to_end_tiles_per_s": kept / (setup + loop),
        "openslide": openslide.__library_version__, "repeats": repeats,
    }))


if __name__ == "__main__":
    main()
