// CPU-only build: the augmentation kernel's CUDA entry point exists so that
// callers link, and says why it cannot run.
#include "augment/augment.h"
#include "core/error.h"

namespace hf {

void augment_cuda(const RgbBatch&, const AugmentImageParams*, const AugmentBatchParams&, float*) {
  throw_built_without_cuda("augment");
}

}  // namespace hf
