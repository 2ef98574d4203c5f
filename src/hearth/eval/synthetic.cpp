#include "hearth/eval/synthetic.h"

#include <sys/statvfs.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "hearth/core/log.h"
#include "hearth/core/process_stats.h"
#include "hearth/core/thread_pool.h"
#include "hearth/gguf/gguf_writer.h"
#include "hearth/kernels/quant.h"

namespace hearth::eval {
namespace {

// Shapes copied from the real models' configs.
constexpr std::array<SyntheticPreset, 4> kPresets = {{
    {"1b", "TinyLlama-1.1B", 2048, 22, 32, 4, 5632, 32000, 0, 0, 2048, 10000.0f, false},
    {"3b", "Llama-3.2-3B", 3072, 28, 24, 8, 8192, 128256, 0, 0, 8192, 500000.0f, true},
    {"7b", "Llama-2-7B", 4096, 32, 32, 32, 11008, 32000, 0, 0, 4096, 10000.0f, false},
    {"8x7b", "Mixtral-8x7B", 4096, 32, 32, 8, 14336, 32000, 8, 2, 32768, 1000000.0f, false},
}};

struct Tensor {
  std::string name;
  std::vector<uint64_t> ne;
  float scale;  // 0: constant 1 (norm weights)
};

std::vector<Tensor> tensor_list(const SyntheticPreset& p) {
  const uint64_t e = p.n_embd, hd = p.n_embd / p.n_head, q = p.n_head * hd, kv = p.n_head_kv * hd, ff = p.n_ff;
  std::vector<Tensor> t;
  t.push_back({"token_embd.weight", {e, static_cast<uint64_t>(p.n_vocab)}, 0.02f});
  for (int64_t l = 0; l < p.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    t.push_back({b + "attn_norm.weight", {e}, 0.0f});
    t.push_back({b + "attn_q.weight", {e, q}, 0.02f});
    t.push_back({b + "attn_k.weight", {e, kv}, 0.02f});
    t.push_back({b + "attn_v.weight", {e, kv}, 0.02f});
    t.push_back({b + "attn_output.weight", {q, e}, 0.02f});
    t.push_back({b + "ffn_norm.weight", {e}, 0.0f});
    if (p.n_expert > 0) {
      const uint64_t ne = static_cast<uint64_t>(p.n_expert);
      t.push_back({b + "ffn_gate_inp.weight", {e, ne}, 0.02f});
      t.push_back({b + "ffn_gate_exps.weight", {e, ff, ne}, 0.02f});
      t.push_back({b + "ffn_up_exps.weight", {e, ff, ne}, 0.02f});
      t.push_back({b + "ffn_down_exps.weight", {ff, e, ne}, 0.02f});
    } else {
      t.push_back({b + "ffn_gate.weight", {e, ff}, 0.02f});
      t.push_back({b + "ffn_up.weight", {e, ff}, 0.02f});
      t.push_back({b + "ffn_down.weight", {ff, e}, 0.02f});
    }
  }
  t.push_back({"output_norm.weight", {e}, 0.0f});
  if (!p.tied_output) t.push_back({"output.weight", {e, static_cast<uint64_t>(p.n_vocab)}, 0.02f});
  return t;
}

// A fast, reproducible approximately-normal generator (sum of four uniforms).
struct FastNormal {
  uint64_t s;
  explicit FastNormal(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float next() {
    float acc = 0.0f;
    for (int i = 0; i < 4; ++i) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      acc += static_cast<float>(s >> 40) * (1.0f / 16777216.0f);
    }
    return (acc - 2.0f) * 1.7320508f;  // variance of the sum is 4/12; scale to 1
  }
};

void add_vocab(gguf::GgufWriter& w, int64_t n_vocab) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  tokens.reserve(static_cast<size_t>(n_vocab));
  auto add = [&](std::string t, float s, int32_t ty) {
    tokens.push_back(std::move(t));
    scores.push_back(s);
    types.push_back(ty);
  };
  add("<unk>", 0.0f, 2);
  add("<s>", 0.0f, 3);
  add("</s>", 0.0f, 3);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, 0.0f, 6);
  }
  // Filler pieces: "▁" plus a base-26 word, unique per id.
  for (int64_t i = static_cast<int64_t>(tokens.size()); i < n_vocab; ++i) {
    std::string word;
    for (int64_t v = i; v > 0; v /= 26) word.push_back(static_cast<char>('a' + v % 26));
    add("\xE2\x96\x81" + word, -static_cast<float>(i), 1);
  }
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_array_strings("tokenizer.ggml.tokens", std::move(tokens));
  w.set_array_f32("tokenizer.ggml.scores", std::move(scores));
  w.set_array_i32("tokenizer.ggml.token_type", std::move(types));
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
}

}  // namespace

const SyntheticPreset* find_preset(std::string_view name) {
  for (const auto& p : kPresets)
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<const SyntheticPreset*> all_presets() {
  std::vector<const SyntheticPreset*> out;
  for (const auto& p : kPresets) out.push_back(&p);
  return out;
}

Result<uint64_t> estimate_synthetic_bytes(const SyntheticPreset& p, const TypeChooser& choose) {
  uint64_t total = 0;
  for (const auto& t : tensor_list(p)) {
    uint64_t rows = 1;
    for (size_t i = 1; i < t.ne.size(); ++i) rows *= t.ne[i];
    HEARTH_ASSIGN_OR_RETURN(TensorType type, choose(t.name, t.ne));
    auto rb = row_bytes(type, t.ne[0]);
    if (!rb) return make_error(ErrorCode::kInternal, "tensor {}: row does not fit its type", t.name);
    total += *rb * rows;
  }
  return total;
}

std::string synthetic_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/hearth/synthetic";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/hearth/synthetic";
  return "/tmp/hearth-synthetic";
}

Result<std::string> ensure_synthetic_model(const SyntheticPreset& p, std::string_view type_label,
                                           const TypeChooser& choose, int n_threads) {
  const std::string ft(type_label);
  const std::string dir = synthetic_cache_dir();
  const std::string path = dir + "/synthetic-" + std::string(p.name) + "-" + ft + ".gguf";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return path;
  HEARTH_ASSIGN_OR_RETURN(uint64_t bytes, estimate_synthetic_bytes(p, choose));
  const uint64_t mem = total_memory_bytes();
  if (mem > 0 && bytes + (uint64_t{1} << 30) > mem) {
    return make_error(ErrorCode::kResourceExhausted,
                      "the {} {} model needs about {} MiB, which does not fit in this machine's {} MiB of RAM; choose "
                      "a smaller preset or type",
                      p.name, ft, bytes >> 20, mem >> 20);
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "{}: cannot create: {}", dir, ec.message());
  struct statvfs vfs {};
  if (statvfs(dir.c_str(), &vfs) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (bytes + (uint64_t{256} << 20) > free_bytes) {
      return make_error(ErrorCode::kResourceExhausted, "{}: the model needs about {} MiB but only {} MiB are free", dir,
                        bytes >> 20, free_bytes >> 20);
    }
  }

  gguf::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name",
               "hearth synthetic " + std::string(p.name) + " (" + std::string(p.shape_of) + " shape, random weights)");
  w.set_u32("llama.context_length", static_cast<uint32_t>(p.n_ctx));
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(p.n_embd));
  w.set_u32("llama.block_count", static_cast<uint32_t>(p.n_layer));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(p.n_ff));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(p.n_head));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(p.n_head_kv));
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(p.n_embd / p.n_head));
  w.set_f32("llama.rope.freq_base", p.rope_base);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  if (p.n_expert > 0) {
    w.set_u32("llama.expert_count", static_cast<uint32_t>(p.n_expert));
    w.set_u32("llama.expert_used_count", static_cast<uint32_t>(p.n_expert_used));
  }
  add_vocab(w, p.n_vocab);
  const auto tensors = tensor_list(p);
  std::vector<TensorType> types;
  for (const auto& t : tensors) {
    HEARTH_ASSIGN_OR_RETURN(TensorType type, choose(t.name, t.ne));
    types.push_back(type);
    HEARTH_TRY(w.add_tensor_info(t.name, types.back(), t.ne));
  }
  ThreadPool pool(n_threads > 0 ? n_threads : physical_core_count());
  std::vector<std::byte> buf;
  const double t0 = now_seconds();
  uint64_t done = 0;
  std::fprintf(stderr, "creating %s (about %llu MiB, once; it is cached)\n", path.c_str(),
               static_cast<unsigned long long>(bytes >> 20));
  Status st = w.write_streaming(path, [&](size_t i) -> Result<std::span<const std::byte>> {
    const Tensor& t = tensors[i];
    const TensorType type = types[i];
    uint64_t rows = 1;
    for (size_t d = 1; d < t.ne.size(); ++d) rows *= t.ne[d];
    const size_t rb = static_cast<size_t>(*row_bytes(type, t.ne[0]));
    buf.resize(rb * rows);
    pool.parallel_for(static_cast<int64_t>(rows), 16, [&](int64_t r0, int64_t r1) {
      std::vector<float> row(t.ne[0]);
      for (int64_t r = r0; r < r1; ++r) {
        FastNormal g(static_cast<uint64_t>(i) * 1000003ull + static_cast<uint64_t>(r));
        for (auto& v : row) v = t.scale == 0.0f ? 1.0f : g.next() * t.scale;
        kernels::quantize_row(type, row.data(), buf.data() + static_cast<size_t>(r) * rb,
                              static_cast<int64_t>(t.ne[0]));
      }
    });
    done += buf.size();
    const double el = now_seconds() - t0;
    std::fprintf(stderr, "\r  tensor %zu/%zu  %llu MiB  %.0f MB/s   ", i + 1, tensors.size(),
                 static_cast<unsigned long long>(done >> 20), done / 1e6 / std::max(el, 1e-9));
    return std::span<const std::byte>(buf);
  });
  std::fprintf(stderr, "\n");
  HEARTH_TRY(st);
  return path;
}

}  // namespace hearth::eval
