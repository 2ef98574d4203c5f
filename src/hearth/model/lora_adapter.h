// LoraAdapter: a LoRA adapter (Hu et al. 2021) loaded for one base Model, in the GGUF layout
// llama.cpp reads and `hearth finetune` writes: general.type = "adapter", adapter.type = "lora",
// adapter.lora.alpha (f32), and per adapted weight W [rows][cols] (ne {cols, rows}) the pair
// `<name>.lora_a` with ne {cols, rank} and `<name>.lora_b` with ne {rank, rows}, so that
// W' = W + scale * (alpha / rank) * B A.
// The file is untrusted: load() checks the metadata, pairs every tensor, binds it to a base
// matmul weight the forward pass adapts (attention q/k/v/output and the dense FFN; not the
// embedding, the output head, the MoE router or experts), checks types (F32, F16) and shapes,
// and converts the factors to f32. Errors name the file and the tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hearth/core/mapped_file.h"
#include "hearth/core/status.h"
#include "hearth/model/model.h"

namespace hearth::model {

// The factors of one adapted weight, in f32.
struct LoraWeight {
  std::string name;                    // the base tensor's name, e.g. blk.0.attn_q.weight
  const TensorView* target = nullptr;  // that tensor's view in the base model's weights()
  int64_t rank = 0, rows = 0, cols = 0;
  std::vector<float> a;  // [rank][cols]
  std::vector<float> b;  // [rows][rank]
  float alpha_over_rank = 0.0f;
};

class LoraAdapter {
 public:
  // Largest rank accepted (the factors of real adapters have rank 4..256).
  static constexpr int64_t kMaxRank = 4096;

  static Result<std::shared_ptr<const LoraAdapter>> load(const std::string& path, const Model& base);
  static Result<std::shared_ptr<const LoraAdapter>> load(const MappedFile& file, const Model& base);
  // The parser over the file's bytes; `name` is used in error messages.
  static Result<std::shared_ptr<const LoraAdapter>> parse(std::span<const std::byte> bytes, std::string_view name,
                                                          const Model& base);

  const std::string& path() const { return path_; }
  float alpha() const { return alpha_; }
  const Model& base() const { return *base_; }
  const std::vector<LoraWeight>& weights() const { return weights_; }
  // The factors for a weight view of the base model (by address in base().weights()), or null.
  const LoraWeight* find(const TensorView* w) const {
    auto it = index_.find(w);
    return it == index_.end() ? nullptr : &weights_[it->second];
  }
  const LoraWeight* find(std::string_view base_name) const;
  int64_t max_rank() const { return max_rank_; }

 private:
  LoraAdapter() = default;
  std::string path_;
  float alpha_ = 0.0f;
  const Model* base_ = nullptr;
  std::vector<LoraWeight> weights_;
  std::unordered_map<const TensorView*, size_t> index_;
  int64_t max_rank_ = 0;
};

// One adapter applied to a sequence with a scale (Context::set_adapters).
struct LoraUse {
  std::shared_ptr<const LoraAdapter> adapter;
  float scale = 1.0f;
};

// The weights of `base` an adapter may target, by tensor name.
std::unordered_map<std::string, const TensorView*> lora_targets(const Model& base);

}  // namespace hearth::model
