// merge_lora: writes a copy of a base model with LoRA adapters merged into its weights, so that
// it runs (and quantizes) without them: every adapted tensor becomes
//   dequantize(W) + sum_i scale_i * (alpha_i / rank_i) * B_i A_i
// stored as F32 or F16; every other tensor and all metadata are copied as they are. The file is
// written atomically (streamed: one merged tensor in memory at a time).
#pragma once

#include <span>
#include <string>

#include "hearth/core/status.h"
#include "hearth/core/tensor_type.h"
#include "hearth/model/lora_adapter.h"
#include "hearth/model/model.h"

namespace hearth::model {

// `type`: F32 or F16 for the merged tensors. Every adapter must have been loaded for `base`.
Status merge_lora(const Model& base, std::span<const LoraUse> adapters, const std::string& out_path,
                  TensorType type = TensorType::F32);

}  // namespace hearth::model
