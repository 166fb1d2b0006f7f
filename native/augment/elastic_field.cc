// elastic::params_ok (augment/elastic_field.h), in a translation unit with
// IEEE comparisons, so that NaN and infinities are really rejected.
#include "augment/elastic_field.h"

namespace hf {
namespace elastic {

bool params_ok(float alpha, float sigma) {
  return alpha == 0.f || (alpha > 0.f && alpha <= 65536.f && sigma >= 1.f && sigma <= 65536.f);
}

}  // namespace elastic
}  // namespace hf
