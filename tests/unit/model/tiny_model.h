// A tiny random-weight model written with the GGUF writer, for loader tests: n_embd 8 (settable),
// 1 layer, 2 heads of 4, 1 kv head, n_ff 16, vocab 10, context 64. `arch` names the family
// (general.architecture and the keys' prefix); callers add the family's extra keys and tensors.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "hearth/gguf/gguf_writer.h"

namespace hearth::testing {

struct TinyModel {
  std::vector<std::vector<float>> storage;
  gguf::GgufWriter w;
  std::mt19937 rng{7};
  std::string arch;
  uint64_t n_embd = 8, n_head = 2, n_head_kv = 1;  // head_dim = n_embd / n_head

  explicit TinyModel(std::string a) : arch(std::move(a)) { storage.reserve(64); }

  void tensor(const std::string& name, std::vector<uint64_t> ne) {
    size_t n = 1;
    for (auto d : ne) n *= d;
    std::normal_distribution<float> dist(0.0f, 0.3f);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    storage.push_back(std::move(v));
    ASSERT_TRUE(w.add_tensor(name, TensorType::F32, ne, std::as_bytes(std::span<const float>(storage.back()))).ok());
  }

  // The keys every decoder has, with `eps_key` as the norm epsilon's key suffix.
  void keys(const std::string& eps_key = "attention.layer_norm_rms_epsilon") {
    w.set_string("general.architecture", arch);
    w.set_u32(arch + ".context_length", 64);
    w.set_u32(arch + ".embedding_length", static_cast<uint32_t>(n_embd));
    w.set_u32(arch + ".block_count", 1);
    w.set_u32(arch + ".feed_forward_length", 16);
    w.set_u32(arch + ".attention.head_count", static_cast<uint32_t>(n_head));
    w.set_u32(arch + ".attention.head_count_kv", static_cast<uint32_t>(n_head_kv));
    w.set_f32(arch + "." + eps_key, 1e-5f);
  }

  // A llama-style decoder: keys, embeddings, separate q/k/v, SwiGLU FFN.
  void llama_layout() {
    keys();
    const uint64_t e = n_embd, kv = n_embd / n_head * n_head_kv;
    tensor("token_embd.weight", {e, 10});
    tensor("output_norm.weight", {e});
    tensor("blk.0.attn_norm.weight", {e});
    tensor("blk.0.attn_q.weight", {e, e});
    tensor("blk.0.attn_k.weight", {e, kv});
    tensor("blk.0.attn_v.weight", {e, kv});
    tensor("blk.0.attn_output.weight", {e, e});
    tensor("blk.0.ffn_norm.weight", {e});
    tensor("blk.0.ffn_gate.weight", {e, 16});
    tensor("blk.0.ffn_up.weight", {e, 16});
    tensor("blk.0.ffn_down.weight", {16, e});
  }
};

}  // namespace hearth::testing
