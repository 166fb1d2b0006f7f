"""Regions read with openslide-python, the references of test/slide_parity.test.ts.

Usage: openslide_regions.py OUT_DIR SLIDE:LEVEL:X:Y:W:H:NAME ...
X and Y are level coordinates: OpenSlide is asked for level 0 position
round(X * downsample), as a user of openslide-python would; the RGBA region is
composited on white (PIL) and written as OUT_DIR/NAME (PNG). Prints the
OpenSlide and openslide-python versions.
"""
import sys

import openslide
from PIL import Image


def main() -> None:
    out = sys.argv[1]
    slides = {}
    for spec in sys.argv[2:]:
        path, level, x, y, w, h, name = spec.rsplit(':', 6)
        level, x, y, w, h = int(level), int(x), int(y), int(w), int(h)
        slide = slides.setdefault(path, openslide.OpenSlide(path))
        ds = slide.level_downsamples[level]
        region = slide.read_region((round(x * ds), round(y * ds)), level, (w, h))
        white = Image.new('RGBA', region.size, (255, 255, 255, 255))
        Image.alpha_composite(white, region).convert('RGB').save(f'{out}/{name}')
    print(f'openslide-python {openslide.__version__}, OpenSlide {openslide.__library_version__}')


if __name__ == '__main__':
    main()
