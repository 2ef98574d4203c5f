// Every op of the kernel tables against the scalar reference table, as one list of declarative
// cases in the style of llama.cpp's test-backend-ops: each case is an op with its shapes, one
// error metric and its bound, and runs on every table this CPU supports (available_kernels()).
// Shapes cross the kernels' block, tile and vector boundaries: odd sizes, tails, partial 16-row
// groups, unaligned rows, GQA ratios 1..8, cache lengths 1..2048, out-of-order positions.
//
// Inputs are drawn from a seed per case, so the reference and every table see the same data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/fp16.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/quant.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {
namespace {

// ---- Error metrics ------------------------------------------------------------------------------

enum class Metric {
  kNrmse,       // ||y - ref|| / ||ref||
  kMaxRel,      // max|y - ref| / max|ref|; a non-finite y where ref is finite fails
  kElementRel,  // max_i |y_i - ref_i| / max(1, |ref_i|)
  kExact,       // bit-for-bit equal values (error 0)
};

double nrmse(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

double max_rel(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isfinite(ref[i]) && !std::isfinite(a[i])) return INFINITY;
    if (!std::isfinite(ref[i])) {
      if (std::isnan(ref[i]) != std::isnan(a[i]) || (!std::isnan(ref[i]) && ref[i] != a[i])) return INFINITY;
      continue;
    }
    num = std::max(num, std::fabs(static_cast<double>(a[i]) - ref[i]));
    den = std::max(den, std::fabs(static_cast<double>(ref[i])));
  }
  return num / std::max(den, 1e-30);
}

double element_rel(const std::vector<float>& a, const std::vector<float>& ref) {
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - ref[i]);
    worst = std::max(worst, d / std::max(1.0, std::fabs(static_cast<double>(ref[i]))));
  }
  return worst;
}

double error(Metric m, const std::vector<float>& a, const std::vector<float>& ref) {
  switch (m) {
    case Metric::kNrmse: return nrmse(a, ref);
    case Metric::kMaxRel: return max_rel(a, ref);
    case Metric::kElementRel: return element_rel(a, ref);
    case Metric::kExact: return max_rel(a, ref);
  }
  return INFINITY;
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::kNrmse: return "nrmse";
    case Metric::kMaxRel: return "max_rel";
    case Metric::kElementRel: return "element_rel";
    case Metric::kExact: return "exact";
  }
  return "?";
}

// ---- Cases --------------------------------------------------------------------------------------

using Output = std::optional<std::vector<float>>;  // nullopt: the op does not apply to this table

struct Case {
  std::string name;  // op and shapes, printed on failure
  Metric metric;
  double max_err;  // the error must be below this (kExact: exactly 0)
  int n_threads = 2;
  // The op on table kt (its inputs drawn from the case's own seed each time).
  std::function<Output(const KernelTable& kt, ThreadPool& pool)> run;
  // What run(kt) is compared with; unset: run(ref_kernels()).
  std::function<Output(const KernelTable& kt, ThreadPool& pool)> expected = nullptr;
  // A property of kt's output beyond the error bound: "" or what is wrong.
  std::function<std::string(const std::vector<float>& out)> invariant = nullptr;
};

std::vector<const KernelTable*> simd_tables() {
  std::vector<const KernelTable*> out;
  for (const KernelTable* t : available_kernels())
    if (t->name != "ref") out.push_back(t);
  return out;
}

// Under user-mode emulation (scripts/arm64.sh sets HEARTH_EMULATED=1, qemu runs ~20-30x slower
// than native and the scalar ref slowest of all), the largest attention shapes are cut: every op,
// type, head_dim, GQA ratio and cache type still runs, only the longest prompts do not.
bool emulated() {
  const char* e = std::getenv("HEARTH_EMULATED");
  return e != nullptr && *e != '\0' && std::string(e) != "0";
}

// Whether two tables run an op with the same kernel (e.g. the same attention pointer): a table
// that shares it with an earlier one adds no coverage for that op (avx512bf16 reuses avx512's).
using SameKernel = bool (*)(const KernelTable&, const KernelTable&);

// Runs every case on every table but ref (with `same`, only on the first of the tables sharing
// a kernel); returns how many (case, table) pairs ran. ref's output is computed once per case,
// not once per table.
int run_cases(const std::vector<Case>& cases, SameKernel same = nullptr) {
  int ran = 0;
  std::vector<const KernelTable*> tables;
  for (const KernelTable* kt : simd_tables()) {
    bool seen = false;
    for (const KernelTable* t : tables) seen = seen || (same != nullptr && same(*t, *kt));
    if (!seen) tables.push_back(kt);
  }
  for (const Case& c : cases) {
    ThreadPool pool(c.n_threads);
    const Output ref_out = c.expected ? std::nullopt : c.run(ref_kernels(), pool);
    for (const KernelTable* kt : tables) {
      const Output want = c.expected ? c.expected(*kt, pool) : ref_out;
      const Output got = c.run(*kt, pool);
      if (!want || !got) continue;
      if (got->size() != want->size()) {
        ADD_FAILURE() << kt->name << " " << c.name << ": " << got->size() << " outputs, ref " << want->size();
        continue;
      }
      const double err = error(c.metric, *got, *want);
      if (c.metric == Metric::kExact) {
        EXPECT_EQ(err, 0.0) << kt->name << " " << c.name;
      } else {
        EXPECT_LT(err, c.max_err) << kt->name << " " << c.name << " (" << metric_name(c.metric) << ")";
      }
      if (c.invariant) {
        const std::string bad = c.invariant(*got);
        EXPECT_TRUE(bad.empty()) << kt->name << " " << c.name << ": " << bad;
      }
      ++ran;
    }
  }
  return ran;
}

void run_or_skip(const std::vector<Case>& cases, SameKernel same = nullptr) {
  if (simd_tables().empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  EXPECT_GT(run_cases(cases, same), 0);
}

std::vector<float> gaussian(size_t n, uint32_t seed, float gain = 1.0f, float offset = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& e : v) e = dist(rng) * gain + offset;
  return v;
}

std::string shape(const std::string& op, std::initializer_list<std::pair<const char*, int64_t>> dims) {
  std::string s = op;
  for (const auto& [k, v] : dims) s += " " + std::string(k) + "=" + std::to_string(v);
  return s;
}

// ---- matmul -------------------------------------------------------------------------------------

const TensorType kWeightTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0,
                                   TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                                   TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K,
                                   TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS};

int64_t block_of(TensorType type) { return traits_of(type).block_size == 1 ? 32 : traits_of(type).block_size; }

struct MatmulShape {
  TensorType type;
  int64_t rows, cols, n_tok;
  bool misaligned;  // rows at addresses that are not SIMD-aligned, as inside a GGUF file
  bool packed;      // through the table's packed copy of W
};

// y = W x on table kt for weights quantized from a seeded gaussian.
Output run_matmul(const MatmulShape& s, uint32_t seed, const KernelTable& kt, ThreadPool& pool) {
  if (s.packed && (kt.pack == nullptr || kt.packed_bytes(s.type, s.rows, s.cols) == 0)) return std::nullopt;
  const size_t rb = *row_bytes(s.type, static_cast<uint64_t>(s.cols));
  const size_t w_bytes = rb * static_cast<size_t>(s.rows);
  // Misaligned rows keep each type's natural alignment (4 for f32 elements, 2 for f16/bf16 and
  // the blocks' d): a GGUF tensor is 32-aligned and its rows inherit the element alignment.
  std::vector<std::byte> wbuf(w_bytes + 128);
  std::byte* w = wbuf.data() + (64 - reinterpret_cast<uintptr_t>(wbuf.data()) % 64) % 64;
  if (s.misaligned) w += s.type == TensorType::F32 ? 4 : 2;
  const std::vector<float> wf = gaussian(static_cast<size_t>(s.rows * s.cols), seed, 0.1f);
  for (int64_t r = 0; r < s.rows; ++r) {
    quantize_row(s.type, wf.data() + r * s.cols, w + static_cast<size_t>(r) * rb, s.cols);
  }
  const std::vector<float> x = gaussian(static_cast<size_t>(s.n_tok * s.cols), seed + 1);
  std::vector<float> y(static_cast<size_t>(s.n_tok * s.rows), -1.0f);
  std::vector<std::byte> scratch(matmul_scratch_bytes(kt, s.type, s.cols, s.n_tok) + 64);
  std::vector<std::byte> packed;
  MatmulArgs a{s.type, w, rb, s.rows, s.cols, x.data(), s.cols, s.n_tok, y.data(), s.rows, scratch.data()};
  if (s.packed) {
    packed.resize(kt.packed_bytes(s.type, s.rows, s.cols) + 64);
    std::byte* pk = packed.data() + (64 - reinterpret_cast<uintptr_t>(packed.data()) % 64) % 64;
    kt.pack(s.type, s.rows, s.cols, w, rb, pk);
    a.packed = pk;
  }
  kt.matmul(a, pool);
  return y;
}

std::vector<Case> matmul_cases() {
  std::vector<Case> cases;
  uint32_t seed = 1000;
  for (TensorType type : kWeightTypes) {
    const int64_t bs = block_of(type);
    // Float weights: only summation order differs. 8-bit activation formats: the SIMD tables
    // quantize activations as ggml's x86 path does (scale 127/amax, round half to even) where
    // ref uses the reference rounding, so a value may land one step apart; on a single
    // 32-element block that is up to ~2e-3 of the norm.
    const bool float_w = type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16;
    for (int64_t cols : {bs, 3 * bs, 8 * bs}) {
      for (int64_t rows : {1, 7, 33}) {
        for (int64_t n_tok : {1, 3, 9}) {
          const MatmulShape s{type, rows, cols, n_tok, true, false};
          cases.push_back(
              {shape("matmul " + std::string(type_name(type)), {{"rows", rows}, {"cols", cols}, {"tokens", n_tok}}),
               Metric::kNrmse, float_w ? 2e-5 : 4e-3, 2,
               [s, seed](const KernelTable& kt, ThreadPool& p) { return run_matmul(s, seed, kt, p); }});
          ++seed;
        }
      }
    }
  }
  return cases;
}

// Tables that repack weights: the packed path against ref and against the same table's unpacked
// path (same activation quantization, so only float summation order differs), for row counts
// with and without a partial 16-row group and token counts around the 4- and 16-token tiles.
std::vector<Case> packed_matmul_cases() {
  std::vector<Case> cases;
  uint32_t seed = 5000;
  for (TensorType type : kWeightTypes) {
    const int64_t bs = block_of(type);
    for (int64_t cols : {bs, 3 * bs, 8 * bs}) {
      for (int64_t rows : {16, 37, 64}) {
        for (int64_t n_tok : {1, 2, 3, 4, 5, 11, 16, 35}) {
          const MatmulShape packed{type, rows, cols, n_tok, false, true};
          MatmulShape plain = packed;
          plain.packed = false;
          const std::string dims =
              " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) + " tokens=" + std::to_string(n_tok);
          auto run = [packed, seed](const KernelTable& kt, ThreadPool& p) { return run_matmul(packed, seed, kt, p); };
          cases.push_back(
              {"packed matmul " + std::string(type_name(type)) + dims, Metric::kNrmse, 4e-3, 2, run,
               [plain, seed](const KernelTable&, ThreadPool& p) { return run_matmul(plain, seed, ref_kernels(), p); }});
          cases.push_back(
              {"packed vs unpacked matmul " + std::string(type_name(type)) + dims, Metric::kNrmse, 2e-6, 2, run,
               [plain, seed](const KernelTable& kt, ThreadPool& p) { return run_matmul(plain, seed, kt, p); }});
          ++seed;
        }
      }
    }
  }
  return cases;
}

// ---- Element-wise ops ---------------------------------------------------------------------------

enum class Elementwise { kRmsNorm, kLayerNorm, kSoftmax, kSwiglu, kAdd };

struct ElementwiseShape {
  Elementwise op;
  int64_t n;
  float gain, offset;  // x = N(0, 1) * gain + offset
  bool with_w, with_b;
};

Output run_elementwise(const ElementwiseShape& s, uint32_t seed, const KernelTable& kt) {
  const auto n = static_cast<size_t>(s.n);
  std::vector<float> x = gaussian(n, seed, s.gain, s.offset);
  const std::vector<float> w = gaussian(n, seed + 1), b = gaussian(n, seed + 2);
  const float* wp = s.with_w ? w.data() : nullptr;
  const float* bp = s.with_b ? b.data() : nullptr;
  std::vector<float> y(n, 0.0f);
  switch (s.op) {
    case Elementwise::kRmsNorm: kt.rms_norm(y.data(), x.data(), wp, s.n, 1e-5f); return y;
    case Elementwise::kLayerNorm: kt.layer_norm(y.data(), x.data(), wp, bp, s.n, 1e-5f); return y;
    case Elementwise::kSoftmax: kt.softmax(x.data(), s.n); return x;
    case Elementwise::kSwiglu: kt.swiglu(x.data(), w.data(), s.n); return x;
    case Elementwise::kAdd: kt.add(x.data(), w.data(), s.n); return x;
  }
  return std::nullopt;
}

std::vector<Case> elementwise_cases() {
  std::vector<Case> cases;
  uint32_t seed = 9000;
  auto add = [&](const std::string& op, Elementwise e, int64_t n, float gain, float offset, bool w, bool b, Metric m,
                 double tol) {
    const ElementwiseShape s{e, n, gain, offset, w, b};
    std::string name = op + " n=" + std::to_string(n) + " gain=" + std::to_string(gain);
    if (e == Elementwise::kRmsNorm || e == Elementwise::kLayerNorm) name += w ? " w" : " no-w";
    if (e == Elementwise::kLayerNorm) name += b ? " b" : " no-b";
    cases.push_back(
        {name, m, tol, 2, [s, seed](const KernelTable& kt, ThreadPool&) { return run_elementwise(s, seed, kt); }});
    seed += 3;
  };
  // Normalized by the norm, unit gaussians.
  for (int64_t n : {1, 7, 64, 100, 4099}) {
    add("rms_norm", Elementwise::kRmsNorm, n, 1.0f, 0.0f, true, false, Metric::kNrmse, 1e-6);
    add("layer_norm", Elementwise::kLayerNorm, n, 1.0f, 0.0f, true, true, Metric::kNrmse, 1e-6);
    add("softmax", Elementwise::kSoftmax, n, 1.0f, 0.0f, false, false, Metric::kNrmse, 1e-6);
    add("swiglu", Elementwise::kSwiglu, n, 1.0f, 0.0f, false, false, Metric::kNrmse, 1e-6);
  }
  // Every vector tail, large inputs (gain 30), with and without the optional weights.
  for (int64_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 255, 1001, 4099}) {
    for (float gain : {1.0f, 30.0f}) {
      for (bool w : {true, false}) {
        add("rms_norm", Elementwise::kRmsNorm, n, gain, 0.5f, w, false, Metric::kMaxRel, 1e-6);
        for (bool b : {true, false})
          add("layer_norm", Elementwise::kLayerNorm, n, gain, 0.5f, w, b, Metric::kMaxRel, 2e-6);
      }
      add("softmax", Elementwise::kSoftmax, n, gain, 0.5f, false, false, Metric::kMaxRel, 2e-6);
      add("swiglu", Elementwise::kSwiglu, n, gain, 0.5f, false, false, Metric::kMaxRel, 2e-6);
      add("add", Elementwise::kAdd, n, gain, 0.5f, false, false, Metric::kExact, 0.0);
    }
  }
  return cases;
}

// Softmax and swiglu on the edges of exp: -inf and very negative inputs give exact zeros, huge
// gates saturate like ref.
std::vector<Case> exp_edge_cases() {
  const std::vector<float> x = {0.0f,   -INFINITY, -1000.0f, -87.0f, -88.5f, -100.0f, -3.0f, -INFINITY, -104.0f, -0.5f,
                                -20.0f, -1e30f,    -60.0f,   -86.0f, -89.0f, -1.0f,   -2.0f, -INFINITY, -150.0f};
  const std::vector<float> g = {-200.0f, -100.0f, -88.5f, -87.0f, -20.0f, -1.0f, 0.0f,  1.0f,  20.0f,
                                87.0f,   88.5f,   100.0f, 200.0f, -1e30f, 1e30f, 0.25f, -0.25f};
  std::vector<Case> cases;
  cases.push_back({"softmax exp edges",
                   Metric::kMaxRel,
                   2e-6,
                   2,
                   [x](const KernelTable& kt, ThreadPool&) -> Output {
                     std::vector<float> y = x;
                     kt.softmax(y.data(), static_cast<int64_t>(y.size()));
                     return y;
                   },
                   {},
                   [x](const std::vector<float>& y) -> std::string {
                     for (size_t i = 0; i < x.size(); ++i) {
                       if (x[i] < -100.0f && y[i] != 0.0f) return "not 0 at " + std::to_string(x[i]);
                       if (!std::isfinite(y[i])) return "not finite at " + std::to_string(x[i]);
                     }
                     return "";
                   }});
  cases.push_back({"swiglu exp edges", Metric::kElementRel, 2e-6, 2, [g](const KernelTable& kt, ThreadPool&) -> Output {
                     std::vector<float> y = g;
                     const std::vector<float> u(g.size(), 1.5f);
                     kt.swiglu(y.data(), u.data(), static_cast<int64_t>(y.size()));
                     return y;
                   }});
  return cases;
}

// ---- rope ---------------------------------------------------------------------------------------

std::vector<Case> rope_cases() {
  struct Shape {
    int head_dim, n_rot;
  };
  std::vector<Case> cases;
  uint32_t seed = 20000;
  const int n_head = 3;
  for (Shape s : {Shape{64, 64}, Shape{128, 128}, Shape{80, 80}, Shape{80, 40}, Shape{64, 32}, Shape{64, 24},
                  Shape{128, 34}, Shape{6, 6}, Shape{34, 34}, Shape{96, 2}, Shape{256, 72}, Shape{66, 64}}) {
    for (RopeMode mode : {RopeMode::kNorm, RopeMode::kNeox}) {
      auto input = [s, seed] {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<float> ang(-3.14159f, 3.14159f);
        std::vector<float> cs(static_cast<size_t>(s.n_rot));
        for (int i = 0; i + 1 < s.n_rot; i += 2) {
          const float t = ang(rng);
          cs[static_cast<size_t>(i)] = std::cos(t);
          cs[static_cast<size_t>(i) + 1] = std::sin(t);
        }
        return std::pair{cs, gaussian(static_cast<size_t>(n_head * s.head_dim), seed + 1)};
      };
      cases.push_back(
          {shape(mode == RopeMode::kNorm ? "rope norm" : "rope neox", {{"head_dim", s.head_dim}, {"n_rot", s.n_rot}}),
           Metric::kMaxRel,
           1e-6,
           2,
           [input, s, mode](const KernelTable& kt, ThreadPool&) -> Output {
             auto [cs, x] = input();
             kt.rope(x.data(), n_head, s.head_dim, s.n_rot, cs.data(), mode);
             return x;
           },
           {},
           // Dims past n_rot are untouched.
           [input, s](const std::vector<float>& y) -> std::string {
             const std::vector<float> x = input().second;
             for (int h = 0; h < n_head; ++h)
               for (int d = s.n_rot; d < s.head_dim; ++d)
                 if (y[static_cast<size_t>(h * s.head_dim + d)] != x[static_cast<size_t>(h * s.head_dim + d)])
                   return "touched dim " + std::to_string(d);
             return "";
           }});
      seed += 2;
    }
  }
  return cases;
}

// ---- attention ----------------------------------------------------------------------------------

struct AttnShape {
  int head_dim, n_head_kv, ratio;  // n_head = n_head_kv * ratio
  int64_t n_ctx;
  std::vector<int32_t> pos;  // one query per position
  float q_gain;              // larger: peakier softmax, exercises the running-max rescale
  KvTypes kv;                // K and V cache types
  int64_t q_pad;             // extra floats per q/out row (strided rows)
};

constexpr float kSentinel = 12345.0f;

std::string describe(const AttnShape& c) {
  return "attention hd=" + std::to_string(c.head_dim) + " kv_heads=" + std::to_string(c.n_head_kv) +
         " ratio=" + std::to_string(c.ratio) + " n_ctx=" + std::to_string(c.n_ctx) +
         " n_tok=" + std::to_string(c.pos.size()) + " first_pos=" + std::to_string(c.pos.front()) +
         " gain=" + std::to_string(c.q_gain) + " k=" + std::string(kv_type_name(c.kv.k)) +
         " v=" + std::string(kv_type_name(c.kv.v)) +
         (c.q_pad != 0 ? " strided" : "");
}

// A cache of type t holding the values f (rows of `row` elements): copied, rounded to f16, or
// quantized row by row with the reference quantizer.
std::vector<std::byte> make_cache(const std::vector<float>& f, KvType t, int64_t row) {
  const auto n_rows = static_cast<int64_t>(f.size()) / row;
  const size_t rb = kv_row_bytes(t, row);
  std::vector<std::byte> out(rb * static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* src = f.data() + r * row;
    std::byte* dst = out.data() + static_cast<size_t>(r) * rb;
    if (t == KvType::kF32) {
      std::memcpy(dst, src, rb);
    } else if (t == KvType::kF16) {
      for (int64_t i = 0; i < row; ++i) {
        const uint16_t h = fp32_to_fp16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    } else {
      quantize_row(kv_tensor_type(t), src, dst, row);
    }
  }
  return out;
}

// What a cache of type t holds, as f32 (the reference dequantizer of its tensor type).
std::vector<float> cache_values(const std::vector<float>& f, KvType t, int64_t row) {
  const std::vector<std::byte> c = make_cache(f, t, row);
  std::vector<float> out(f.size());
  const size_t rb = kv_row_bytes(t, row);
  for (size_t r = 0; r < f.size() / static_cast<size_t>(row); ++r)
    dequantize_row(kv_tensor_type(t), c.data() + r * rb, out.data() + r * static_cast<size_t>(row), row);
  return out;
}

// Attention on table kt over caches of c.kv's types; with `as_f32`, over f32 caches holding the
// values those types store (the oracle for the quantized caches' decode).
Output run_attention(const AttnShape& c, uint32_t seed, const KernelTable& kt, ThreadPool& pool, bool as_f32 = false) {
  const int n_head = c.n_head_kv * c.ratio;
  const auto n_tok = static_cast<int64_t>(c.pos.size());
  const int64_t kv_stride = static_cast<int64_t>(c.n_head_kv) * c.head_dim;
  const int64_t q_stride = static_cast<int64_t>(n_head) * c.head_dim + c.q_pad;
  const std::vector<float> kf = gaussian(static_cast<size_t>(c.n_ctx * kv_stride), seed);
  const std::vector<float> vf = gaussian(kf.size(), seed + 1);
  const KvTypes types = as_f32 ? KvTypes(KvType::kF32) : c.kv;
  const std::vector<std::byte> kc =
      as_f32 ? make_cache(cache_values(kf, c.kv.k, kv_stride), KvType::kF32, kv_stride) : make_cache(kf, c.kv.k, kv_stride);
  const std::vector<std::byte> vc =
      as_f32 ? make_cache(cache_values(vf, c.kv.v, kv_stride), KvType::kF32, kv_stride) : make_cache(vf, c.kv.v, kv_stride);
  const std::vector<float> q = gaussian(static_cast<size_t>(n_tok * q_stride), seed + 2, c.q_gain);
  std::vector<float> out(q.size(), kSentinel);
  std::vector<float> scratch(attention_scratch_floats(c.n_ctx, pool.size()));
  AttentionArgs a{};
  a.q = q.data();
  a.q_stride = q_stride;
  a.k = kc.data();
  a.v = vc.data();
  a.kv_stride = kv_stride;
  a.k_type = types.k;
  a.v_type = types.v;
  a.pos = c.pos.data();
  a.n_tokens = n_tok;
  a.n_head = n_head;
  a.n_head_kv = c.n_head_kv;
  a.head_dim = c.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  a.out = out.data();
  a.out_stride = q_stride;
  a.scratch = scratch.data();
  kt.attention(a, pool);
  return out;
}

std::vector<int32_t> positions(int64_t first, int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = static_cast<int32_t>(first + i);
  return p;
}

void add_attention(std::vector<Case>& cases, AttnShape s, Metric m, double tol, int n_threads, uint32_t seed) {
  const int64_t row = static_cast<int64_t>(s.n_head_kv * s.ratio) * s.head_dim;
  const int64_t stride = row + s.q_pad;
  // The padding of the strided output rows is left alone.
  auto padding_kept = [row, stride](const std::vector<float>& out) -> std::string {
    for (size_t i = 0; i < out.size(); ++i)
      if (static_cast<int64_t>(i) % stride >= row && out[i] != kSentinel) return "wrote past a row";
    return "";
  };
  std::string name = describe(s) + (n_threads != 2 ? " threads=" + std::to_string(n_threads) : "");
  cases.push_back({name,
                   m,
                   tol,
                   n_threads,
                   [s, seed](const KernelTable& kt, ThreadPool& p) { return run_attention(s, seed, kt, p); },
                   {},
                   s.q_pad != 0 ? std::function<std::string(const std::vector<float>&)>(padding_kept) : nullptr});
}

// Shapes for the quantized caches: rows of whole 32-element blocks, heads that fill blocks
// (64, 128), share one (8 x 4 heads), or straddle them (48, 80); decode, a chunk after a cached
// prefix, a whole prompt; GQA ratios 1 and 4.
std::vector<AttnShape> quantized_attention_shapes() {
  std::vector<AttnShape> out;
  const std::vector<KvTypes> types = {KvTypes(KvType::kQ8_0), KvTypes(KvType::kQ4_0),
                                      KvTypes(KvType::kQ8_0, KvType::kF16), KvTypes(KvType::kF32, KvType::kQ4_0)};
  for (auto [head_dim, n_head_kv] : {std::pair{8, 4}, std::pair{32, 1}, std::pair{48, 2}, std::pair{64, 2},
                                     std::pair{80, 2}, std::pair{128, 1}}) {
    for (int ratio : {1, 4}) {
      for (int64_t n_ctx : {1, 65, 300}) {
        const int64_t chunk = std::min<int64_t>(n_ctx, 13);
        for (const KvTypes& kv : types) {
          out.push_back({head_dim, n_head_kv, ratio, n_ctx, positions(n_ctx - 1, 1), 1.0f, kv, 8});
          out.push_back({head_dim, n_head_kv, ratio, n_ctx, positions(n_ctx - chunk, chunk), 4.0f, kv, 8});
        }
        if (n_ctx <= (emulated() ? 65 : 300))
          out.push_back({head_dim, n_head_kv, ratio, n_ctx, positions(0, n_ctx), 1.0f, types[0], 0});
      }
    }
  }
  return out;
}

std::vector<Case> attention_cases() {
  std::vector<Case> cases;
  uint32_t seed = 30000;
  // A prompt chunk over a short cache, every head_dim class (normalized by the norm).
  for (KvType kv : {KvType::kF32, KvType::kF16}) {
    for (int head_dim : {8, 32, 40, 128}) {
      add_attention(cases, {head_dim, 2, 2, 77, {0, 10, 40, 75, 76}, 1.0f, kv, 0}, Metric::kNrmse, 1e-5, 2, seed);
      seed += 3;
    }
  }
  // Across shapes: head_dim 8..128 (not only multiples of the vector width), GQA ratios 1..8,
  // cache lengths 1..1000; decode, a chunk continuing a cached prefix, a whole prompt.
  std::mt19937 rng(2024);
  for (int head_dim : {8, 32, 40, 64, 80, 128}) {
    for (int ratio : {1, 2, 4, 8}) {
      const int n_head_kv = ratio == 8 ? 1 + static_cast<int>(rng() % 4) : 2;
      for (int64_t n_ctx : {1, 2, 63, 64, 65, 129, 255, 257, 1000}) {
        const int64_t chunk = std::min<int64_t>(n_ctx, 13);
        std::vector<std::pair<std::vector<int32_t>, float>> queries = {{positions(n_ctx - 1, 1), 1.0f},
                                                                       {positions(n_ctx - chunk, chunk), 4.0f}};
        if (n_ctx <= (emulated() ? 129 : 257)) queries.push_back({positions(0, n_ctx), 1.0f});  // bounded: ref is slow
        for (KvType kv : {KvType::kF32, KvType::kF16}) {
          for (const auto& [pos, gain] : queries) {
            add_attention(cases, {head_dim, n_head_kv, ratio, n_ctx, pos, gain, kv, 8}, Metric::kMaxRel, 2e-5, 2, seed);
            seed += 3;
          }
        }
      }
    }
  }
  // Out-of-order positions, peaky scores, other pool sizes.
  for (int n_threads : {1, 3}) {
    for (KvType kv : {KvType::kF32, KvType::kF16}) {
      for (AttnShape s : {AttnShape{64, 4, 8, 600, {599, 3, 200, 128, 0, 450, 127}, 1.0f, kv, 8},
                          AttnShape{128, 2, 4, 300, {10, 299, 150}, 12.0f, kv, 8},
                          AttnShape{96, 1, 2, 40, positions(0, 40), 20.0f, kv, 8},
                          AttnShape{64, 4, 8, 2048, positions(2047, 1), 3.0f, kv, 8}}) {
        add_attention(cases, s, Metric::kMaxRel, 2e-5, n_threads, seed);
        seed += 3;
      }
    }
  }
  // Quantized caches (--cache-type-k/-v q8_0, q4_0), alone or beside a float half.
  for (const AttnShape& s : quantized_attention_shapes()) {
    add_attention(cases, s, Metric::kMaxRel, 2e-5, 2, seed);
    seed += 3;
  }
  return cases;
}

// ---- Tests --------------------------------------------------------------------------------------

TEST(KernelOps, Matmul) { run_or_skip(matmul_cases()); }
TEST(KernelOps, PackedMatmul) {
  if (simd_tables().empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  if (run_cases(packed_matmul_cases()) == 0) GTEST_SKIP() << "no table on this CPU repacks weights";
}
TEST(KernelOps, Elementwise) { run_or_skip(elementwise_cases()); }
TEST(KernelOps, ExpEdges) { run_or_skip(exp_edge_cases()); }
TEST(KernelOps, Rope) { run_or_skip(rope_cases()); }
TEST(KernelOps, Attention) {
  run_or_skip(attention_cases(), [](const KernelTable& a, const KernelTable& b) { return a.attention == b.attention; });
}

// Every table, ref included, reads a quantized cache as the values its blocks hold: the same
// attention over an f32 cache of the reference dequantizer's values is the oracle.
TEST(KernelOps, AttentionReadsQuantizedCachesAsTheirDequantizedValues) {
  uint32_t seed = 77000;
  for (const AttnShape& s : quantized_attention_shapes()) {
    ThreadPool pool(2);
    const Output want = run_attention(s, seed, ref_kernels(), pool, /*as_f32=*/true);
    for (const KernelTable* kt : available_kernels()) {
      const Output got = run_attention(s, seed, *kt, pool);
      ASSERT_TRUE(want && got);
      EXPECT_LT(max_rel(*got, *want), 2e-5) << kt->name << " " << describe(s);
    }
    seed += 3;
  }
}

// A sliding window read from a ring (AttentionArgs::ring): the call's cache row j is ring row
// (first + j) % ring. Every table, ref included, must give the attention over the same rows
// laid out contiguously (ref, no ring) — with windows that wrap, that do not, and a ring
// exactly as long as the window, for each cache type.
TEST(KernelOps, AttentionOverARingEqualsTheContiguousRows) {
  uint32_t seed = 91000;
  struct RingCase {
    int head_dim, n_head_kv, ratio;
    int64_t window, ring, first;  // rows read, ring rows, ring row of the call's row 0
    int64_t n_tok;                // queries at the window's last positions
  };
  for (const KernelTable* kt : available_kernels()) {
    for (KvTypes kv : {KvTypes(KvType::kF32), KvTypes(KvType::kF16), KvTypes(KvType::kQ8_0, KvType::kQ4_0)}) {
      for (const RingCase& rc : {RingCase{64, 2, 2, 40, 48, 30, 1}, RingCase{64, 2, 2, 40, 48, 3, 1},
                                 RingCase{32, 1, 4, 300, 301, 200, 1}, RingCase{128, 1, 2, 16, 16, 9, 1},
                                 RingCase{48, 2, 1, 150, 200, 170, 5}}) {
        const int64_t row = static_cast<int64_t>(rc.n_head_kv) * rc.head_dim;
        const int n_head = rc.n_head_kv * rc.ratio;
        const std::vector<float> kf = gaussian(static_cast<size_t>(rc.window * row), seed);
        const std::vector<float> vf = gaussian(kf.size(), seed + 1);
        const std::vector<float> q = gaussian(static_cast<size_t>(rc.n_tok * n_head * rc.head_dim), seed + 2, 2.0f);
        seed += 3;
        // The ring: row (first + j) % ring holds window row j; the other rows hold noise.
        std::vector<float> kr = gaussian(static_cast<size_t>(rc.ring * row), seed + 7, 50.0f);
        std::vector<float> vr = gaussian(kr.size(), seed + 8, 50.0f);
        for (int64_t j = 0; j < rc.window; ++j) {
          const int64_t r = (rc.first + j) % rc.ring;
          std::copy_n(kf.begin() + j * row, row, kr.begin() + r * row);
          std::copy_n(vf.begin() + j * row, row, vr.begin() + r * row);
        }
        std::vector<int32_t> pos;
        for (int64_t t = 0; t < rc.n_tok; ++t) pos.push_back(static_cast<int32_t>(rc.window - rc.n_tok + t));
        auto run = [&](const KernelTable& table, const std::vector<float>& kvals, const std::vector<float>& vvals,
                       int64_t ring, int64_t first) {
          const std::vector<std::byte> kc = make_cache(kvals, kv.k, row), vc = make_cache(vvals, kv.v, row);
          ThreadPool pool(2);
          std::vector<float> out(q.size(), kSentinel);
          std::vector<float> scratch(attention_scratch_floats(std::max(rc.ring, rc.window), pool.size()));
          AttentionArgs a{};
          a.q = q.data();
          a.q_stride = static_cast<int64_t>(n_head) * rc.head_dim;
          a.k = kc.data();
          a.v = vc.data();
          a.kv_stride = row;
          a.k_type = kv.k;
          a.v_type = kv.v;
          a.pos = pos.data();
          a.n_tokens = rc.n_tok;
          a.n_head = n_head;
          a.n_head_kv = rc.n_head_kv;
          a.head_dim = rc.head_dim;
          a.scale = 1.0f / std::sqrt(static_cast<float>(rc.head_dim));
          a.out = out.data();
          a.out_stride = a.q_stride;
          a.scratch = scratch.data();
          a.ring = ring;
          a.ring_first = first;
          table.attention(a, pool);
          return out;
        };
        const std::vector<float> want = run(ref_kernels(), kf, vf, 0, 0);
        const std::vector<float> got = run(*kt, kr, vr, rc.ring, rc.first);
        EXPECT_LT(max_rel(got, want), 2e-5) << kt->name << " ring=" << rc.ring << " first=" << rc.first
                                             << " window=" << rc.window << " k=" << kv_type_name(kv.k);
      }
    }
  }
}

// The cache row size of each type: ggml's block sizes (34 bytes per 32 for Q8_0, 18 for Q4_0).
TEST(KvTypes, RowBytesAndNames) {
  EXPECT_EQ(kv_row_bytes(KvType::kF32, 96), 384u);
  EXPECT_EQ(kv_row_bytes(KvType::kF16, 96), 192u);
  EXPECT_EQ(kv_row_bytes(KvType::kQ8_0, 96), 3u * 34u);
  EXPECT_EQ(kv_row_bytes(KvType::kQ4_0, 96), 3u * 18u);
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0, KvType::kQ4_0}) {
    EXPECT_EQ(parse_kv_type_name(kv_type_name(t)), t);
    EXPECT_EQ(kv_row_bytes(t, 64), *row_bytes(kv_tensor_type(t), 64));
  }
  EXPECT_FALSE(parse_kv_type_name("q8").has_value());
}

// ---- Table properties that are not comparisons with ref -----------------------------------------

TEST(KernelTables, RefIsAlwaysAvailableAndSelectable) {
  ASSERT_FALSE(available_kernels().empty());
  EXPECT_EQ(available_kernels().front()->name, "ref");
  EXPECT_EQ(kernels_by_name("ref"), &ref_kernels());
  EXPECT_EQ(kernels_by_name("no-such-isa"), nullptr);
}

TEST(KernelTables, FewerRowsThanOneGroupAreNeverPacked) {
  for (const KernelTable* kt : available_kernels()) {
    if (kt->pack == nullptr) continue;
    for (TensorType type : kWeightTypes) EXPECT_EQ(kt->packed_bytes(type, 15, block_of(type)), 0u) << kt->name;
  }
}

// The per-type rows agree with the file format's block geometry, and every weight type the
// tables run has a complete row.
TEST(TypeTraits, RowsMatchTheFormatAndAreComplete) {
  for (size_t id = 0; id < kTypeCount; ++id) {
    const auto type = static_cast<TensorType>(id);
    const TypeTraits& tr = type_traits(type);
    if (tr.block_size == 0) {
      EXPECT_EQ(tr.to_float, nullptr) << id;
      continue;
    }
    const auto format = tensor_type_traits(static_cast<uint32_t>(id));
    ASSERT_TRUE(format.has_value()) << id;
    EXPECT_EQ(tr.block_size, format->block_size) << format->name;
    EXPECT_EQ(tr.type_size, format->type_size) << format->name;
    EXPECT_NE(tr.to_float, nullptr) << format->name;
    EXPECT_NE(tr.from_float, nullptr) << format->name;
  }
  for (TensorType type : kWeightTypes) {
    const TypeTraits& tr = type_traits(type);
    EXPECT_NE(tr.vec_dot, nullptr) << type_name(type);
    EXPECT_NE(type_traits(tr.vec_dot_type).from_float, nullptr) << type_name(type);
  }
}

// The bandwidth probe's reader must touch every word: a plain wrapping sum is the oracle.
TEST(KernelTables, ReadSumAddsEveryWord) {
  std::mt19937_64 rng(5);
  for (const KernelTable* kt : available_kernels()) {
    ASSERT_NE(kt->read_sum, nullptr) << kt->name;
    for (size_t words : {8, 24, 32, 40, 520}) {
      std::vector<uint64_t> buf(words + 8);
      auto* p = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) / 64 * 64);
      uint64_t want = 0;
      for (size_t i = 0; i < words; ++i) {
        p[i] = rng();
        want += p[i];
      }
      EXPECT_EQ(kt->read_sum(reinterpret_cast<const std::byte*>(p), words * 8), want) << kt->name << " words=" << words;
    }
  }
}

}  // namespace
}  // namespace hearth::kernels
