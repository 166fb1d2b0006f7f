/** The plain TypeScript backend ('js'): the pixel-map backend over plain loops. */
import { jsPixelMaps } from './js_pixel_maps.js';
import { pixelMapBackend } from './pixel_map_backend.js';
import type { KernelBackend } from './types.js';

export const jsBackend: KernelBackend = pixelMapBackend('js', jsPixelMaps);
