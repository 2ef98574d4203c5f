// Runs a fixed suite of kernel calls on the active table (HEARTH_ISA), each between two marker
// syscalls (after one warm-up call), close(-(1000 + 2i)) and close(-(1001 + 2i)), so
// that an instruction trace of the whole run (scripts/arm64.sh count: qemu -singlestep
// -d exec,nochain,strace) can be cut into the instructions of each call, setup and warm-up
// (lazy table construction) excluded. Prints "<i> <name>" for each call. One thread, so a
// count is that of the kernel alone. The shapes are a 1B-class llama's (n_embd 2048, n_ff
// 5632, 32 heads of 64, 4 KV heads), with matmuls cut to 16 and 32 rows: the difference of the
// two is the cost of one row, the rest the per-call cost (activation conversion).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/fp16.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/quant.h"

using namespace hearth;
using namespace hearth::kernels;

namespace {

// Cheap deterministic values in about [-1.7, 1.7] (setup is traced too; keep it short).
std::vector<float> values(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (float& e : v) {
    s = s * 1664525u + 1013904223u;
    e = (static_cast<float>(s >> 8) / 16777216.0f - 0.5f) * 3.4f;
  }
  return v;
}

struct Call {
  std::string name;
  std::function<void()> run;
};

struct MatmulData {
  std::vector<std::byte> w, scratch;
  std::vector<float> x, y;
  MatmulArgs a{};
};

}  // namespace

int main() {
  const KernelTable& kt = active_kernels();
  ThreadPool pool(1);
  std::vector<Call> calls;
  std::vector<std::unique_ptr<MatmulData>> mats;
  auto matmul = [&](const char* tname, int64_t rows, int64_t cols, int64_t n_tok) {
    const TensorType type = *parse_tensor_type(tname);
    auto m = std::make_unique<MatmulData>();
    const size_t rb = *row_bytes(type, static_cast<uint64_t>(cols));
    // One quantized row, repeated: the kernels' instruction counts do not depend on the values,
    // and quantizing every row would dominate the traced run.
    m->w.resize(rb * static_cast<size_t>(rows));
    const std::vector<float> wf = values(static_cast<size_t>(cols), 1);
    quantize_row(type, wf.data(), m->w.data(), cols);
    for (int64_t r = 1; r < rows; ++r) std::memcpy(m->w.data() + r * rb, m->w.data(), rb);
    m->x = values(static_cast<size_t>(n_tok * cols), 2);
    m->y.resize(static_cast<size_t>(n_tok * rows));
    m->scratch.resize(matmul_scratch_bytes(kt, type, cols, n_tok));
    m->a = MatmulArgs{type, m->w.data(), rb, rows, cols, m->x.data(), cols, n_tok, m->y.data(), rows, m->scratch.data()};
    MatmulData* p = m.get();
    mats.push_back(std::move(m));
    calls.push_back({"matmul " + std::string(tname) + " " + std::to_string(rows) + "x" + std::to_string(cols) +
                         " tokens=" + std::to_string(n_tok),
                     [&kt, &pool, p] { kt.matmul(p->a, pool); }});
  };
  for (const char* t : {"f32", "f16", "q8_0", "q4_0", "q4_K", "q6_K"}) {
    matmul(t, 16, 2048, 1);
    matmul(t, 32, 2048, 1);
  }
  matmul("q4_0", 16, 2048, 8);
  matmul("q8_0", 16, 2048, 8);

  const int64_t n_embd = 2048, n_ff = 5632;
  std::vector<float> x = values(static_cast<size_t>(n_ff), 3), w = values(static_cast<size_t>(n_ff), 4);
  std::vector<float> y(static_cast<size_t>(n_ff));
  calls.push_back({"rms_norm n=2048", [&] { kt.rms_norm(y.data(), x.data(), w.data(), n_embd, 1e-5f); }});
  calls.push_back({"softmax n=2048", [&] { kt.softmax(y.data(), n_embd); }});
  calls.push_back({"swiglu n=5632", [&] { kt.swiglu(x.data(), w.data(), n_ff); }});
  calls.push_back({"add n=2048", [&] { kt.add(y.data(), w.data(), n_embd); }});

  const int n_head = 32, n_head_kv = 4, head_dim = 64;
  const int64_t n_kv = 256, kv_stride = static_cast<int64_t>(n_head_kv) * head_dim;
  std::vector<float> q = values(static_cast<size_t>(n_head) * head_dim, 5);
  std::vector<float> cs(static_cast<size_t>(head_dim));
  for (int i = 0; i + 1 < head_dim; i += 2) {
    cs[static_cast<size_t>(i)] = std::cos(0.1f * static_cast<float>(i));
    cs[static_cast<size_t>(i) + 1] = std::sin(0.1f * static_cast<float>(i));
  }
  calls.push_back({"rope 32x64", [&] { kt.rope(q.data(), n_head, head_dim, head_dim, cs.data(), RopeMode::kNorm); }});
  const std::vector<float> kf = values(static_cast<size_t>(n_kv * kv_stride), 7);
  const std::vector<float> vf = values(static_cast<size_t>(n_kv * kv_stride), 8);
  std::vector<uint16_t> kc(kf.size()), vc(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) {
    kc[i] = fp32_to_fp16(kf[i]);
    vc[i] = fp32_to_fp16(vf[i]);
  }
  const int32_t pos = static_cast<int32_t>(n_kv - 1);
  std::vector<float> out(q.size());
  std::vector<float> ascratch(attention_scratch_floats(n_kv, 1));
  AttentionArgs at{};
  at.q = q.data();
  at.q_stride = static_cast<int64_t>(n_head) * head_dim;
  at.k = kc.data();
  at.v = vc.data();
  at.kv_stride = kv_stride;
  at.k_type = KvType::kF16;
  at.v_type = KvType::kF16;
  at.pos = &pos;
  at.n_tokens = 1;
  at.n_head = n_head;
  at.n_head_kv = n_head_kv;
  at.head_dim = head_dim;
  at.scale = 0.125f;
  at.out = out.data();
  at.out_stride = at.q_stride;
  at.scratch = ascratch.data();
  calls.push_back({"attention n_kv=256 32/4 heads x64 f16", [&] { kt.attention(at, pool); }});

  for (size_t i = 0; i < calls.size(); ++i) {
    if (i == 0) calls[i].run();  // warm-up: first-use construction of the table is not counted
    ::close(-static_cast<int>(1000 + 2 * i));
    calls[i].run();
    ::close(-static_cast<int>(1001 + 2 * i));
    std::printf("%zu %s\n", i, calls[i].name.c_str());
  }
  std::printf("table %s\n", std::string(kt.name).c_str());
  return 0;
}
