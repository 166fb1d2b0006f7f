"""The openslide-python peer of `histoflow bench tile`: what a user would write
with OpenSlide's DeepZoom generator to cut a slide into tissue tiles.

  read    openslide.deepzoom.DeepZoomGenerator(slide, tile_size=SIZE, overlap=0,
          limit_bounds=False), full-resolution DeepZoom level, get_tile per grid cell
  filter  the tissue mask histoflow computed for the same slide (MASK.png, white =
          tissue, one mask pixel = DOWNSAMPLE level-0 pixels): a tile is kept when
          the fraction of mask pixels whose centres fall inside it is >= MIN_TISSUE;
          the fraction is computed per tile with numpy before the tile is read
  encode  PIL PNG (compress_level 6, libpng's default and sharp's), one file a tile
          into OUTDIR, single process (what a plain script does)

Only full tiles (inside the slide) are considered, as histoflow's grid does.

Usage: tile_openslide.py SLIDE SIZE MASK.png DOWNSAMPLE MIN_TISSUE OUTDIR REPEATS
Prints one JSON object: tiles kept, grid cells, seconds per run (median), tiles/s.
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import openslide
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image


def run(slide_path, size, mask, downsample, min_tissue, outdir):
    slide = openslide.OpenSlide(slide_path)
    dz = DeepZoomGenerator(slide, tile_size=size, overlap=0, limit_bounds=False)
    level = dz.level_count - 1
    width, height = dz.level_dimensions[level]
    cols, rows = width // size, height // size
    mh, mw = mask.shape
    # mask pixel centres in level-0 px
    cy = (np.arange(mh) + 0.5) * downsample
    cx = (np.arange(mw) + 0.5) * downsample
    kept = 0
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
    return kept, rows * cols


def main():
    slide_path, size, mask_path, downsample, min_tissue, outdir, repeats = sys.argv[1:8]
    size, downsample, min_tissue, repeats = int(size), float(downsample), float(min_tissue), int(repeats)
    mask = (np.asarray(Image.open(mask_path).convert("L")) > 127).astype(np.float32)
    os.makedirs(outdir, exist_ok=True)
    run(slide_path, size, mask, downsample, min_tissue, outdir)  # warm-up (file cache, imports)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        kept, cells = run(slide_path, size, mask, downsample, min_tissue, outdir)
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    print(json.dumps({
        "tiles": kept, "cells": cells, "seconds": seconds, "tiles_per_s": kept / seconds,
        "openslide": openslide.__library_version__, "repeats": repeats,
    }))


if __name__ == "__main__":
    main()
