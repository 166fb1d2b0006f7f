// check_augment_args (augment/augment_check.h), in a translation unit with
// IEEE comparisons (augment_cpu.cc assumes finite math).
#include "augment/augment_check.h"

#include <string>

#include "augment/elastic_field.h"
#include "core/error.h"

namespace hf {

void check_augment_args(const RgbBatch& in, const AugmentImageParams* params, const AugmentBatchParams& batch) {
  const auto fail = [](const std::string& what) { throw ArgumentError("augment: " + what); };
  if (batch.out_h <= 0 || batch.out_w <= 0) fail("out_h and out_w must be positive");
  if (batch.crop_h <= 0 || batch.crop_w <= 0 || batch.crop_h > in.height || batch.crop_w > in.width)
    fail("the crop window must fit the source images");
  for (int64_t i = 0; i < in.n; ++i) {
    const AugmentImageParams& p = params[i];
    if (p.d4 < 0 || p.d4 > 7) fail("d4 must be in 0..7");
    if (p.crop_y < 0 || p.crop_x < 0 || p.crop_y + batch.crop_h > in.height || p.crop_x + batch.crop_w > in.width)
      fail("crop window of image " + std::to_string(i) + " is outside the source");
    if (!elastic::params_ok(p.elastic_alpha, p.elastic_sigma))
      fail("elastic parameters of image " + std::to_string(i) + " are out of range");
  }
}

}  // namespace hf
