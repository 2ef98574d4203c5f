// A llama-architecture GGUF (any weight type hearth dequantizes, quantized included) read into
// the trainer's f32 layout: the frozen base that LoRA finetuning starts from.
#pragma once

#include <vector>

#include "hearth/core/status.h"
#include "hearth/gguf/gguf.h"
#include "hearth/train/llama_params.h"

namespace hearth::train {

struct BaseModel {
  LlamaShape shape;
  std::vector<float> w;  // in LlamaParams(shape)'s layout
};

// n_ctx: the training window (at most the model's context_length). Errors name what the
// trainer does not support (other architectures, experts, RoPE scaling, biases).
Result<BaseModel> read_base_model(const gguf::GgufFile& f, int64_t n_ctx);

}  // namespace hearth::train
