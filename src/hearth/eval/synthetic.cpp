#include "hearth/eval/synthetic.h"

#include <sys/statvfs.h>

#include <algorithm>
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

// Shapes copied from the real models' config.json (hidden_size, num_hidden_layers,
// num_attention_heads, num_key_value_heads, head_dim, intermediate_size, vocab_size,
// max_position_embeddings, rope_theta, tie_word_embeddings, rms_norm_eps; gemma3's
// sliding_window, sliding_window_pattern and rope_local_base_freq; Llama 3.2's rope_scaling).
constexpr std::array<SyntheticPreset, 8> kPresets = {{
    {"1b", "TinyLlama-1.1B", "llama", 2048, 22, 32, 4, 64, 5632, 32000, 0, 0, 2048, 10000.0f, false, 1e-5f, 0, 0, 0.0f,
     0.0f},
    {"3b", "Llama-3.2-3B", "llama", 3072, 28, 24, 8, 128, 8192, 128256, 0, 0, 8192, 500000.0f, true, 1e-5f, 0, 0, 0.0f,
     0.0f},
    {"7b", "Llama-2-7B", "llama", 4096, 32, 32, 32, 128, 11008, 32000, 0, 0, 4096, 10000.0f, false, 1e-5f, 0, 0, 0.0f,
     0.0f},
    {"8x7b", "Mixtral-8x7B", "llama", 4096, 32, 32, 8, 128, 14336, 32000, 8, 2, 32768, 1000000.0f, false, 1e-5f, 0, 0,
     0.0f, 0.0f},
    {"qwen3-1.7b", "Qwen3-1.7B", "qwen3", 2048, 28, 16, 8, 128, 6144, 151936, 0, 0, 40960, 1000000.0f, true, 1e-6f, 0,
     0, 0.0f, 0.0f},
    {"gemma3-1b", "Gemma-3-1B", "gemma3", 1152, 26, 4, 1, 256, 6912, 262144, 0, 0, 32768, 1000000.0f, true, 1e-6f, 512,
     6, 10000.0f, 0.0f},
    {"phi3-mini", "Phi-3-mini-4k", "phi3", 3072, 32, 32, 32, 96, 8192, 32064, 0, 0, 4096, 10000.0f, false, 1e-5f, 0, 0,
     0.0f, 0.0f},
    {"llama3.2-1b", "Llama-3.2-1B", "llama", 2048, 16, 32, 8, 64, 8192, 128256, 0, 0, 131072, 500000.0f, true, 1e-5f,
     0, 0, 0.0f, 32.0f},
}};

struct Tensor {
  std::string name;
  std::vector<uint64_t> ne;
  float scale;                // 0: constant 1 (norm weights)
  std::vector<float> values;  // when not empty: these values (rope_freqs)
};

// Llama 3.1 rope scaling as the converters store it (rope_freqs.weight): per frequency pair, the
// divisor of its angle: 1 for wavelengths under original/high_freq_factor, `factor` above
// original/low_freq_factor, a smooth blend in between (the "llama3" rope_type of config.json).
std::vector<float> llama3_rope_freqs(const SyntheticPreset& p) {
  const double low = 1.0, high = 4.0, orig = 8192.0, factor = p.llama3_rope_factor;
  std::vector<float> out;
  for (int64_t i = 0; i < p.head_dim; i += 2) {
    const double freq = std::pow(static_cast<double>(p.rope_base), -static_cast<double>(i) / p.head_dim);
    const double wavelen = 2.0 * M_PI / freq;
    double div = 1.0;
    if (wavelen > orig / low) {
      div = factor;
    } else if (wavelen >= orig / high) {
      const double smooth = (orig / wavelen - low) / (high - low);
      div = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    out.push_back(static_cast<float>(div));
  }
  return out;
}

std::vector<Tensor> tensor_list(const SyntheticPreset& p) {
  const uint64_t e = p.n_embd, hd = p.head_dim, q = p.n_head * hd, kv = p.n_head_kv * hd, ff = p.n_ff;
  const bool qk_norm = p.arch == "qwen3" || p.arch == "gemma3";
  const bool gemma = p.arch == "gemma3", phi3 = p.arch == "phi3";
  std::vector<Tensor> t;
  t.push_back({"token_embd.weight", {e, static_cast<uint64_t>(p.n_vocab)}, 0.02f, {}});
  if (p.llama3_rope_factor > 0.0f) t.push_back({"rope_freqs.weight", {hd / 2}, 1.0f, llama3_rope_freqs(p)});
  for (int64_t l = 0; l < p.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    t.push_back({b + "attn_norm.weight", {e}, 0.0f, {}});
    if (phi3) {
      t.push_back({b + "attn_qkv.weight", {e, q + 2 * kv}, 0.02f, {}});  // rows q | k | v
    } else {
      t.push_back({b + "attn_q.weight", {e, q}, 0.02f, {}});
      t.push_back({b + "attn_k.weight", {e, kv}, 0.02f, {}});
      t.push_back({b + "attn_v.weight", {e, kv}, 0.02f, {}});
    }
    if (qk_norm) {
      t.push_back({b + "attn_q_norm.weight", {hd}, 0.0f, {}});
      t.push_back({b + "attn_k_norm.weight", {hd}, 0.0f, {}});
    }
    t.push_back({b + "attn_output.weight", {q, e}, 0.02f, {}});
    if (gemma) t.push_back({b + "post_attention_norm.weight", {e}, 0.0f, {}});
    t.push_back({b + "ffn_norm.weight", {e}, 0.0f, {}});
    if (p.n_expert > 0) {
      const uint64_t ne = static_cast<uint64_t>(p.n_expert);
      t.push_back({b + "ffn_gate_inp.weight", {e, ne}, 0.02f, {}});
      t.push_back({b + "ffn_gate_exps.weight", {e, ff, ne}, 0.02f, {}});
      t.push_back({b + "ffn_up_exps.weight", {e, ff, ne}, 0.02f, {}});
      t.push_back({b + "ffn_down_exps.weight", {ff, e, ne}, 0.02f, {}});
    } else if (phi3) {
      t.push_back({b + "ffn_up.weight", {e, 2 * ff}, 0.02f, {}});  // rows gate | up
      t.push_back({b + "ffn_down.weight", {ff, e}, 0.02f, {}});
    } else {
      t.push_back({b + "ffn_gate.weight", {e, ff}, 0.02f, {}});
      t.push_back({b + "ffn_up.weight", {e, ff}, 0.02f, {}});
      t.push_back({b + "ffn_down.weight", {ff, e}, 0.02f, {}});
    }
    if (gemma) t.push_back({b + "post_ffw_norm.weight", {e}, 0.0f, {}});
  }
  t.push_back({"output_norm.weight", {e}, 0.0f, {}});
  if (!p.tied_output) t.push_back({"output.weight", {e, static_cast<uint64_t>(p.n_vocab)}, 0.02f, {}});
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

SyntheticPreset miniature(const SyntheticPreset& p) {
  SyntheticPreset m = p;
  const int64_t group = p.n_head / p.n_head_kv;  // query heads per kv head, kept
  m.n_head_kv = std::max<int64_t>(1, 4 / group);
  m.n_head = group * m.n_head_kv;
  m.n_embd = 256;
  m.head_dim = 32;
  m.n_ff = 512;
  m.n_vocab = 512;
  m.n_layer = std::min<int64_t>(p.n_layer, 7);  // gemma3's pattern of 6: sliding, global and sliding again
  m.n_ctx = std::min<int64_t>(p.n_ctx, 512);
  m.n_swa = std::min<int64_t>(p.n_swa, 16);
  m.n_expert = std::min<int64_t>(p.n_expert, 4);
  m.n_expert_used = std::min<int64_t>(p.n_expert_used, 2);
  return m;
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

  std::fprintf(stderr, "creating %s (about %llu MiB, once; it is cached)\n", path.c_str(),
               static_cast<unsigned long long>(bytes >> 20));
  HEARTH_TRY(write_synthetic_model(p, path, choose, n_threads));
  return path;
}

Status write_synthetic_model(const SyntheticPreset& p, const std::string& path, const TypeChooser& choose,
                             int n_threads) {
  const std::string a(p.arch);
  auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  gguf::GgufWriter w;
  w.set_string("general.architecture", a);
  w.set_string("general.name",
               "hearth synthetic " + std::string(p.name) + " (" + std::string(p.shape_of) + " shape, random weights)");
  w.set_u32(a + ".context_length", u32(p.n_ctx));
  w.set_u32(a + ".embedding_length", u32(p.n_embd));
  w.set_u32(a + ".block_count", u32(p.n_layer));
  w.set_u32(a + ".feed_forward_length", u32(p.n_ff));
  w.set_u32(a + ".attention.head_count", u32(p.n_head));
  w.set_u32(a + ".attention.head_count_kv", u32(p.n_head_kv));
  w.set_u32(a + ".attention.key_length", u32(p.head_dim));
  w.set_u32(a + ".attention.value_length", u32(p.head_dim));
  w.set_u32(a + ".rope.dimension_count", u32(p.head_dim));
  w.set_f32(a + ".rope.freq_base", p.rope_base);
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", p.norm_eps);
  if (p.n_swa > 0) {
    w.set_u32(a + ".attention.sliding_window", u32(p.n_swa));
    w.set_u32(a + ".attention.sliding_window_pattern", u32(p.swa_pattern));
    w.set_f32(a + ".rope.freq_base_swa", p.rope_base_swa);
  }
  if (p.n_expert > 0) {
    w.set_u32(a + ".expert_count", u32(p.n_expert));
    w.set_u32(a + ".expert_used_count", u32(p.n_expert_used));
  }
  add_vocab(w, p.n_vocab);
  const auto tensors = tensor_list(p);
  std::vector<TensorType> types;
  for (const auto& t : tensors) {
    // rope_freqs keeps its exact values in F32.
    HEARTH_ASSIGN_OR_RETURN(TensorType type,
                            t.values.empty() ? choose(t.name, t.ne) : Result<TensorType>(TensorType::F32));
    types.push_back(type);
    HEARTH_TRY(w.add_tensor_info(t.name, types.back(), t.ne));
  }
  uint64_t total = 0;
  for (size_t i = 0; i < w.tensor_count(); ++i) total += w.tensor_bytes(i);
  const bool quiet = total < (uint64_t{64} << 20);  // no progress line for test-sized files
  ThreadPool pool(n_threads > 0 ? n_threads : physical_core_count());
  std::vector<std::byte> buf;
  const double t0 = now_seconds();
  uint64_t done = 0;
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
        if (!t.values.empty()) {
          std::copy(t.values.begin(), t.values.end(), row.begin());
        } else {
          for (auto& v : row) v = t.scale == 0.0f ? 1.0f : g.next() * t.scale;
        }
        kernels::quantize_row(type, row.data(), buf.data() + static_cast<size_t>(r) * rb,
                              static_cast<int64_t>(t.ne[0]));
      }
    });
    done += buf.size();
    const double el = now_seconds() - t0;
    if (!quiet) std::fprintf(stderr, "\r  tensor %zu/%zu  %llu MiB  %.0f MB/s   ", i + 1, tensors.size(),
                 static_cast<unsigned long long>(done >> 20), done / 1e6 / std::max(el, 1e-9));
    return std::span<const std::byte>(buf);
  });
  if (!quiet) std::fprintf(stderr, "\n");
  return st;
}

}  // namespace hearth::eval
