// Test fixtures for LoRA: a small random f32 llama written with the GGUF writer, adapters for
// it (random factors, in the layout `hearth finetune` writes), and the explicitly merged model
// W' = W + sum_i s_i (alpha_i / rank_i) B_i A_i, computed in double, as the oracle.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "hearth/core/tensor_type.h"
#include "hearth/gguf/gguf_writer.h"
#include "hearth/kernels/fp16.h"

namespace hearth::testing {

// A llama: n_embd 16, 2 layers, 4 heads, 2 kv heads, n_ff 32, vocab 24. Tensors in `order`.
struct LoraBase {
  std::map<std::string, std::vector<uint64_t>> shapes;
  std::map<std::string, std::vector<float>> values;
  std::vector<std::string> order;

  LoraBase() {
    std::mt19937 rng(5);
    std::normal_distribution<float> dist(0.0f, 0.3f);
    auto add = [&](const std::string& name, std::vector<uint64_t> ne, bool norm) {
      uint64_t n = 1;
      for (auto d : ne) n *= d;
      std::vector<float> v(n);
      for (auto& x : v) x = norm ? 1.0f + 0.1f * dist(rng) : dist(rng);
      shapes[name] = ne;
      values[name] = std::move(v);
      order.push_back(name);
    };
    add("token_embd.weight", {16, 24}, false);
    add("output_norm.weight", {16}, true);
    add("output.weight", {16, 24}, false);
    for (int il = 0; il < 2; ++il) {
      const std::string p = "blk." + std::to_string(il) + ".";
      add(p + "attn_norm.weight", {16}, true);
      add(p + "attn_q.weight", {16, 16}, false);
      add(p + "attn_k.weight", {16, 8}, false);
      add(p + "attn_v.weight", {16, 8}, false);
      add(p + "attn_output.weight", {16, 16}, false);
      add(p + "ffn_norm.weight", {16}, true);
      add(p + "ffn_gate.weight", {16, 32}, false);
      add(p + "ffn_up.weight", {16, 32}, false);
      add(p + "ffn_down.weight", {32, 16}, false);
    }
  }

  // Writes the model with tensor values `v` (default: the base's).
  bool write(const std::string& path, const std::map<std::string, std::vector<float>>* v = nullptr) const {
    if (v == nullptr) v = &values;
    gguf::GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.context_length", 64);
    w.set_u32("llama.embedding_length", 16);
    w.set_u32("llama.block_count", 2);
    w.set_u32("llama.feed_forward_length", 32);
    w.set_u32("llama.attention.head_count", 4);
    w.set_u32("llama.attention.head_count_kv", 2);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    for (const auto& name : order) {
      const auto& data = v->at(name);
      if (!w.add_tensor(name, TensorType::F32, shapes.at(name), std::as_bytes(std::span<const float>(data))).ok()) {
        return false;
      }
    }
    return w.write(path).ok();
  }
};

// A LoRA adapter's content; write() lets a test corrupt any part of it first.
struct LoraFile {
  struct Factor {
    std::string name;
    std::vector<uint64_t> ne;
    std::vector<float> v;
    TensorType type = TensorType::F32;
  };
  std::string general_type = "adapter", adapter_type = "lora";
  float alpha = 8.0f;
  bool write_alpha = true;
  std::vector<Factor> factors;
  int64_t rank = 0;

  // Random factors of `rank` for each named base weight.
  LoraFile(const LoraBase& base, const std::vector<std::string>& targets, int64_t r, uint32_t seed, float alpha_ = 8.0f)
      : LoraFile(base.shapes, targets, r, seed, alpha_) {}
  // The same for any model, given its tensors' shapes (ne) by name.
  LoraFile(const std::map<std::string, std::vector<uint64_t>>& shapes, const std::vector<std::string>& targets,
           int64_t r, uint32_t seed, float alpha_ = 8.0f)
      : alpha(alpha_), rank(r) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 0.2f);
    for (const auto& t : targets) {
      const auto& ne = shapes.at(t);
      const uint64_t cols = ne[0], rows = ne[1], rk = static_cast<uint64_t>(r);
      Factor a{t + ".lora_a", {cols, rk}, std::vector<float>(cols * rk)};
      Factor b{t + ".lora_b", {rk, rows}, std::vector<float>(rk * rows)};
      for (auto& x : a.v) x = dist(rng);
      for (auto& x : b.v) x = dist(rng);
      factors.push_back(std::move(a));
      factors.push_back(std::move(b));
    }
  }

  bool write(const std::string& path) const {
    gguf::GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_string("general.type", general_type);
    w.set_string("adapter.type", adapter_type);
    if (write_alpha) w.set_f32("adapter.lora.alpha", alpha);
    std::vector<std::vector<uint16_t>> halves;
    halves.reserve(factors.size());
    for (const auto& f : factors) {
      std::span<const std::byte> bytes = std::as_bytes(std::span<const float>(f.v));
      if (f.type == TensorType::F16) {
        halves.emplace_back();
        for (float x : f.v) halves.back().push_back(kernels::fp32_to_fp16(x));
        bytes = std::as_bytes(std::span<const uint16_t>(halves.back()));
      }
      if (!w.add_tensor(f.name, f.type, f.ne, bytes).ok()) return false;
    }
    return w.write(path).ok();
  }

  const Factor* find(const std::string& name) const {
    for (const auto& f : factors) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }
};

// base + sum_i scale_i (alpha_i / rank_i) B_i A_i, in double, rounded to f32 once.
inline std::map<std::string, std::vector<float>> merge_explicitly(
    const LoraBase& base, const std::vector<std::pair<const LoraFile*, float>>& adapters) {
  std::map<std::string, std::vector<float>> out = base.values;
  for (auto& [name, w] : out) {
    const auto& ne = base.shapes.at(name);
    if (ne.size() != 2) continue;
    const uint64_t cols = ne[0], rows = ne[1];
    std::vector<double> acc(w.begin(), w.end());
    bool touched = false;
    for (const auto& [lf, s] : adapters) {
      const auto* a = lf->find(name + ".lora_a");
      const auto* b = lf->find(name + ".lora_b");
      if (a == nullptr || b == nullptr) continue;
      touched = true;
      const uint64_t rk = a->ne[1];
      const double k = static_cast<double>(s) * lf->alpha / static_cast<double>(rk);
      for (uint64_t r = 0; r < rows; ++r) {
        for (uint64_t c = 0; c < cols; ++c) {
          double d = 0;
          for (uint64_t j = 0; j < rk; ++j) d += static_cast<double>(b->v[r * rk + j]) * a->v[j * cols + c];
          acc[r * cols + c] += k * d;
        }
      }
    }
    if (touched) {
      for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(acc[i]);
    }
  }
  return out;
}

inline const std::vector<std::string>& all_lora_targets() {
  static const std::vector<std::string> t = [] {
    std::vector<std::string> v;
    for (int il = 0; il < 2; ++il) {
      for (const char* s : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
        v.push_back("blk." + std::to_string(il) + "." + s + ".weight");
      }
    }
    return v;
  }();
  return t;
}

}  // namespace hearth::testing
