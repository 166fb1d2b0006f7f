// Tissue detection on a slide thumbnail: one RGB image → a 0/255 mask.
//
// The chain (each step optional through its parameter):
//   1. channel   c(x) ∈ 0..255 where higher = more tissue:
//        saturation  round(255·(max−min)/max) of the RGB pixel (HSV S; 0 when max = 0)
//        od          round(255/3 · Σ_k −ln((I_k+1)/256)), clamped to 255 (OD sum 0..3)
//        grey        255 − (299·R + 587·G + 114·B)/1000 (PIL's "L", inverted: what
//                    histolab thresholds, tissue = darker than Otsu)
//   2. median blur   k×k (k odd), borders replicated (scipy 'nearest').
//   3. threshold     Otsu on the 256-bin histogram of the blurred channel (skimage
//                    threshold_otsu on uint8: t maximises w0·w1·(μ0−μ1)², classes
//                    {≤ t} and {> t}, the first t on ties), raised to min_threshold
//                    so that a blank thumbnail does not split its noise; a fixed
//                    threshold ≥ 0 replaces Otsu. Tissue = c > t.
//   4. closing, then opening, with disks of the given radii (skimage disk(r):
//      x²+y² ≤ r²). Outside the image counts as background for dilation and as
//      foreground for erosion (skimage binary_erosion's border), so nothing erodes
//      from the edge. Then a dilation by dilation_radius: a margin around the
//      tissue (histolab's TissueMask dilates by disk(5) on its thumbnail), so that
//      tiles at the tissue's edge are not lost to a thumbnail's coarse pixels.
//   5. pen marks     (exclude_pen) pixels matching the red/green/blue ink rules of
//                    deephistopath (deroneriksson/python-wsi-preprocessing,
//                    wsi/filter.py: filter_red_pen, filter_green_pen, filter_blue_pen;
//                    the thresholds of histolab's Red/Green/BluePenFilter), plus one
//                    rule of ours for dark maroon ink (r > 60, g < 35, b < 60), are ink.
//                    A tissue component (8-connected) at least half of whose pixels
//                    are ink is a pen stroke and is removed whole (with its blurred
//                    halo, which no colour rule catches); in the others (ink over
//                    tissue) the ink, opened by disk(1) so that isolated ink-coloured
//                    pixels of dense stain stay, is cleared.
//   6. components    (8-connectivity): tissue components with area < min_object_area
//                    are removed; background components that do not touch the border
//                    (holes) with area ≤ max_hole_area are filled.
//   7. if the remaining tissue has < min_tissue_area pixels, the mask is emptied.
//
// CPU only, by design: masks are thumbnail-sized (≤ a few Mpx) and the chain is
// a sequence of small dependent passes, so a CUDA twin would spend more on launches
// and transfers than the whole chain costs here.
#pragma once
#include <cstdint>

namespace hf {

enum class TissueChannel : int32_t { Saturation = 0, OpticalDensity = 1, Grey = 2 };

struct TissueParams {
  TissueChannel channel = TissueChannel::Saturation;
  int32_t median_size = 5;       // k of the k×k median; ≤ 1: none
  int32_t threshold = -1;        // < 0: Otsu
  int32_t min_threshold = 0;     // floor of the Otsu threshold
  bool exclude_pen = false;
  int32_t closing_radius = 2;    // 0: none
  int32_t opening_radius = 1;    // 0: none
  int32_t dilation_radius = 0;   // 0: none
  int64_t min_object_area = 0;   // mask pixels
  int64_t max_hole_area = 0;     // mask pixels
  int64_t min_tissue_area = 0;   // mask pixels
};

struct TissueResult {
  int32_t threshold = 0;         // the threshold applied to the channel
  int64_t tissue_pixels = 0;     // 255s in the final mask
};

// rgb: height*width*3 → mask: height*width, 0 or 255.
TissueResult tissue_mask_cpu(const uint8_t* rgb, int64_t height, int64_t width, const TissueParams& p, uint8_t* mask);

// ---- The steps, exposed for the tests and for reuse ----------------------------
// Step 1 for one image.
void tissue_channel_cpu(const uint8_t* rgb, int64_t pixels, TissueChannel channel, uint8_t* out);
// Otsu's threshold of a 256-bin histogram (counts ≥ 0); 0 for an empty histogram,
// the only value for a one-valued one.
int32_t otsu_threshold(const double hist[256]);
// k×k median (k odd ≥ 1), replicate border.
void median_filter_cpu(const uint8_t* in, int64_t height, int64_t width, int32_t k, uint8_t* out);
// True where an RGB pixel is red, green or blue pen ink (step 5).
bool is_pen_ink(uint8_t r, uint8_t g, uint8_t b);
// Binary (0 / non-zero in, 0 / 255 out) dilation and erosion with disk(radius);
// in and out may not alias.
void dilate_disk_cpu(const uint8_t* in, int64_t height, int64_t width, int32_t radius, uint8_t* out);
void erode_disk_cpu(const uint8_t* in, int64_t height, int64_t width, int32_t radius, uint8_t* out);
// In place on a 0/255 mask: removes tissue components (8-connected) with area <
// min_object_area and fills holes (8-connected background components not touching
// the border) with area ≤ max_hole_area.
void remove_small_components_cpu(uint8_t* mask, int64_t height, int64_t width, int64_t min_object_area,
                                 int64_t max_hole_area);

}  // namespace hf
