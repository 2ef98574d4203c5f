// Calls one kernel of the active table (HEARTH_ISA) `calls` times on seeded data, for counting
// instructions under emulation (scripts/arm64_count.sh): the count of a run with 2 calls minus
// the count of a run with 1 call is what one steady-state call executes, setup excluded.
//
//   kernel_calls <calls> matmul <type> <rows> <cols> <tokens>
//   kernel_calls <calls> rms_norm|softmax|swiglu|add <n>
//   kernel_calls <calls> rope <n_head> <head_dim>
//   kernel_calls <calls> attention <n_kv> <n_head> <n_head_kv> <head_dim>     (f16 cache)
// One thread, so the count is that of the kernel alone.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/fp16.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/quant.h"

using namespace hearth;
using namespace hearth::kernels;

namespace {

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& e : v) e = d(rng);
  return v;
}

int64_t arg(char** argv, int i) { return std::strtoll(argv[i], nullptr, 10); }

int usage() {
  std::fprintf(stderr, "usage: kernel_calls <calls> matmul <type> <rows> <cols> <tokens> | rms_norm|softmax|swiglu|add <n> | "
                       "rope <n_head> <head_dim> | attention <n_kv> <n_head> <n_head_kv> <head_dim>\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const int calls = static_cast<int>(arg(argv, 1));
  const std::string op = argv[2];
  const KernelTable& kt = active_kernels();
  ThreadPool pool(1);
  float sink = 0.0f;
  if (op == "matmul" && argc == 7) {
    const auto type = parse_tensor_type(argv[3]);
    const int64_t rows = arg(argv, 4), cols = arg(argv, 5), n_tok = arg(argv, 6);
    if (!type || !can_vec_dot(*type)) return usage();
    const size_t rb = *row_bytes(*type, static_cast<uint64_t>(cols));
    std::vector<std::byte> w(rb * static_cast<size_t>(rows));
    const std::vector<float> wf = gaussian(static_cast<size_t>(rows * cols), 1);
    for (int64_t r = 0; r < rows; ++r) quantize_row(*type, wf.data() + r * cols, w.data() + r * rb, cols);
    const std::vector<float> x = gaussian(static_cast<size_t>(n_tok * cols), 2);
    std::vector<float> y(static_cast<size_t>(n_tok * rows));
    std::vector<std::byte> scratch(matmul_scratch_bytes(kt, *type, cols, n_tok));
    const MatmulArgs a{*type, w.data(), rb, rows, cols, x.data(), cols, n_tok, y.data(), rows, scratch.data()};
    for (int c = 0; c < calls; ++c) kt.matmul(a, pool);
    sink = y[0];
  } else if ((op == "rms_norm" || op == "softmax" || op == "swiglu" || op == "add") && argc == 4) {
    const int64_t n = arg(argv, 3);
    std::vector<float> x = gaussian(static_cast<size_t>(n), 3), w = gaussian(static_cast<size_t>(n), 4);
    std::vector<float> y(static_cast<size_t>(n));
    for (int c = 0; c < calls; ++c) {
      if (op == "rms_norm") kt.rms_norm(y.data(), x.data(), w.data(), n, 1e-5f);
      if (op == "softmax") kt.softmax(x.data(), n);
      if (op == "swiglu") kt.swiglu(x.data(), w.data(), n);
      if (op == "add") kt.add(x.data(), w.data(), n);
    }
    sink = x[0] + y[0];
  } else if (op == "rope" && argc == 5) {
    const int n_head = static_cast<int>(arg(argv, 3)), head_dim = static_cast<int>(arg(argv, 4));
    std::vector<float> x = gaussian(static_cast<size_t>(n_head) * static_cast<size_t>(head_dim), 5);
    std::vector<float> cs(static_cast<size_t>(head_dim));
    for (int i = 0; i + 1 < head_dim; i += 2) {
      cs[static_cast<size_t>(i)] = std::cos(0.1f * static_cast<float>(i));
      cs[static_cast<size_t>(i) + 1] = std::sin(0.1f * static_cast<float>(i));
    }
    for (int c = 0; c < calls; ++c) kt.rope(x.data(), n_head, head_dim, head_dim, cs.data(), RopeMode::kNorm);
    sink = x[0];
  } else if (op == "attention" && argc == 7) {
    const int64_t n_kv = arg(argv, 3);
    const int n_head = static_cast<int>(arg(argv, 4)), n_head_kv = static_cast<int>(arg(argv, 5));
    const int head_dim = static_cast<int>(arg(argv, 6));
    if (n_kv < 1 || n_head_kv < 1 || n_head % n_head_kv != 0) return usage();
    const int64_t kv_stride = static_cast<int64_t>(n_head_kv) * head_dim;
    const std::vector<float> q = gaussian(static_cast<size_t>(n_head) * static_cast<size_t>(head_dim), 6);
    const std::vector<float> kf = gaussian(static_cast<size_t>(n_kv * kv_stride), 7);
    const std::vector<float> vf = gaussian(static_cast<size_t>(n_kv * kv_stride), 8);
    std::vector<uint16_t> k(kf.size()), v(vf.size());
    for (size_t i = 0; i < kf.size(); ++i) k[i] = fp32_to_fp16(kf[i]), v[i] = fp32_to_fp16(vf[i]);
    const int32_t pos = static_cast<int32_t>(n_kv - 1);
    std::vector<float> out(q.size());
    std::vector<float> scratch(attention_scratch_floats(n_kv, 1));
    AttentionArgs a{};
    a.q = q.data();
    a.q_stride = static_cast<int64_t>(n_head) * head_dim;
    a.k = k.data();
    a.v = v.data();
    a.kv_stride = kv_stride;
    a.k_type = KvType::kF16;
    a.v_type = KvType::kF16;
    a.pos = &pos;
    a.n_tokens = 1;
    a.n_head = n_head;
    a.n_head_kv = n_head_kv;
    a.head_dim = head_dim;
    a.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    a.out = out.data();
    a.out_stride = a.q_stride;
    a.scratch = scratch.data();
    for (int c = 0; c < calls; ++c) kt.attention(a, pool);
    sink = out[0];
  } else {
    return usage();
  }
  std::printf("%s %s %g\n", std::string(kt.name).c_str(), op.c_str(), static_cast<double>(sink));
  return 0;
}
