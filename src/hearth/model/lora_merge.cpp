// merge_lora: see lora_merge.h.
#include "hearth/model/lora_merge.h"

#include <cmath>
#include <vector>

#include "hearth/gguf/gguf_writer.h"
#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant.h"

namespace hearth::model {

Status merge_lora(const Model& base, std::span<const LoraUse> adapters, const std::string& out_path, TensorType type) {
  if (type != TensorType::F32 && type != TensorType::F16) {
    return make_error(ErrorCode::kInvalidArgument, "merged tensors are f32 or f16, not {}", type_name(type));
  }
  if (adapters.empty()) return make_error(ErrorCode::kInvalidArgument, "no LoRA adapter to merge");
  for (const LoraUse& u : adapters) {
    if (u.adapter == nullptr || &u.adapter->base() != &base) {
      return make_error(ErrorCode::kInvalidArgument, "a LoRA adapter was not loaded for {}", base.path());
    }
    if (!std::isfinite(u.scale)) {
      return make_error(ErrorCode::kInvalidArgument, "LoRA adapter {}: scale {} is not finite", u.adapter->path(),
                        u.scale);
    }
  }
  const gguf::GgufFile& f = base.gguf();
  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : f.metadata()) w.copy_kv(kv);

  // The adapted tensors are declared without data and produced by the source below, in order.
  struct Merged {
    const gguf::TensorInfo* t;
    std::vector<std::pair<const LoraWeight*, float>> parts;  // factors and scale * alpha / rank
  };
  std::vector<Merged> merged;     // by writer tensor index, for the declared ones
  std::vector<size_t> merged_at;  // writer tensor index -> index in merged (or SIZE_MAX)
  for (const gguf::TensorInfo& t : f.tensors()) {
    Merged m{&t, {}};
    for (const LoraUse& u : adapters) {
      if (const LoraWeight* lw = u.adapter->find(t.name)) m.parts.emplace_back(lw, u.scale * lw->alpha_over_rank);
    }
    std::vector<uint64_t> ne(t.ne, t.ne + t.n_dims);
    if (m.parts.empty()) {
      HEARTH_TRY(w.add_tensor(std::string(t.name), t.type, ne, t.data));
      merged_at.push_back(SIZE_MAX);
    } else {
      HEARTH_TRY(w.add_tensor_info(std::string(t.name), type, ne));
      merged_at.push_back(merged.size());
      merged.push_back(std::move(m));
    }
  }

  std::vector<float> row;
  std::vector<float> out;
  std::vector<uint16_t> half;
  auto source = [&](size_t index) -> Result<std::span<const std::byte>> {
    const Merged& m = merged[merged_at[index]];
    const gguf::TensorInfo& t = *m.t;
    const auto cols = static_cast<int64_t>(t.ne[0]), rows = static_cast<int64_t>(t.ne[1]);
    const size_t in_row = t.data.size() / static_cast<size_t>(rows);
    out.assign(static_cast<size_t>(rows * cols), 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      float* o = out.data() + r * cols;
      kernels::dequantize_row(t.type, t.data.data() + static_cast<size_t>(r) * in_row, o, cols);
      // o += sum over adapters and ranks of (scale * alpha / rank) * B[r][j] * A[j][:]
      for (const auto& [lw, k] : m.parts) {
        for (int64_t j = 0; j < lw->rank; ++j) {
          const float c = k * lw->b[static_cast<size_t>(r * lw->rank + j)];
          const float* a = lw->a.data() + j * cols;
          for (int64_t x = 0; x < cols; ++x) o[x] += c * a[x];
        }
      }
    }
    if (type == TensorType::F32) return std::as_bytes(std::span<const float>(out));
    half.resize(out.size());
    for (size_t i = 0; i < out.size(); ++i) half[i] = kernels::fp32_to_fp16(out[i]);
    return std::as_bytes(std::span<const uint16_t>(half));
  };
  return w.write_streaming(out_path, source);
}

}  // namespace hearth::model
