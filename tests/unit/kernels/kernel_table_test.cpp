// Every kernel table the CPU supports against the scalar reference table, on random data:
// matmul for every weight type x odd shapes x token counts x unaligned buffers, and the
// element-wise ops. Errors are normalized: ||y - y_ref|| / ||y_ref||.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/fp16.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/quant.h"

namespace hearth::kernels {
namespace {

double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

std::vector<const KernelTable*> simd_tables() {
  std::vector<const KernelTable*> out;
  for (const KernelTable* t : available_kernels()) if (t->name != "ref") out.push_back(t);
  return out;
}

const TensorType kWeightTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0,
                                   TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                                   TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K,
                                   TensorType::Q6_K};

TEST(KernelTables, RefIsAlwaysAvailableAndSelectable) {
  ASSERT_FALSE(available_kernels().empty());
  EXPECT_EQ(available_kernels().front()->name, "ref");
  EXPECT_EQ(kernels_by_name("ref"), &ref_kernels());
  EXPECT_EQ(kernels_by_name("no-such-isa"), nullptr);
}

TEST(KernelTables, MatmulMatchesRefForEveryTypeAndShape) {
  auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  std::mt19937 rng(1234);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  ThreadPool pool(2);
  for (const KernelTable* kt : tables) {
    for (TensorType type : kWeightTypes) {
      const int64_t bs = traits_of(type).block_size == 1 ? 32 : traits_of(type).block_size;
      for (int64_t cols : {bs, 3 * bs, 8 * bs + (bs == 32 ? 0 : 0)}) {
        for (int64_t rows : {1, 7, 33}) {
          for (int64_t n_tok : {1, 3, 9}) {
            const size_t rb = *row_bytes(type, static_cast<uint64_t>(cols));
            // Rows at addresses that are not SIMD-aligned, as inside a GGUF file, but keep each
            // type's natural alignment (4 for f32 elements, 2 for f16/bf16 and the blocks' d):
            // a GGUF tensor is 32-aligned and its rows inherit the element alignment.
            const size_t misalign = type == TensorType::F32 ? 4 : 2;
            std::vector<std::byte> wbuf(rb * static_cast<size_t>(rows) + 64);
            std::byte* w = wbuf.data() + (64 - reinterpret_cast<uintptr_t>(wbuf.data()) % 64) % 64 + misalign;
            if (w + rb * static_cast<size_t>(rows) > wbuf.data() + wbuf.size()) w -= 32;
            std::vector<float> wrow(static_cast<size_t>(cols));
            for (int64_t r = 0; r < rows; ++r) {
              for (auto& v : wrow) v = dist(rng) * 0.1f;
              quantize_row(type, wrow.data(), w + static_cast<size_t>(r) * rb, cols);
            }
            std::vector<float> x(static_cast<size_t>(n_tok * cols));
            for (auto& v : x) v = dist(rng);
            std::vector<float> y_ref(static_cast<size_t>(n_tok * rows)), y(y_ref.size(), -1.0f);
            std::vector<std::byte> scratch(matmul_scratch_bytes(*kt, type, cols, n_tok) + 64);
            MatmulArgs a{type, w, rb, rows, cols, x.data(), cols, n_tok, y_ref.data(), rows, scratch.data()};
            ref_kernels().matmul(a, pool);
            a.y = y.data();
            kt->matmul(a, pool);
            // Float weights: only summation order differs. 8-bit activation formats: the SIMD
            // tables quantize activations as ggml's x86 path does (scale 127/amax, round half
            // to even) where ref uses the reference rounding, so a value may land one step
            // apart; on a single 32-element block that is up to ~2e-3 of the norm.
            const bool float_w = type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16;
            EXPECT_LT(rel_err(y, y_ref), float_w ? 2e-5 : 4e-3) << kt->name << " " << type_name(type) << " rows " << rows << " cols "
                                               << cols << " tokens " << n_tok;
          }
        }
      }
    }
  }
}

// Tables that repack weights: the packed path against ref and against the same table's
// unpacked path (same activation quantization, so only float summation order differs), for
// row counts with and without a partial 16-row group and token counts around the 4- and
// 16-token tiles.
TEST(KernelTables, PackedMatmulMatchesRefAndUnpacked) {
  std::mt19937 rng(99);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  ThreadPool pool(2);
  int checked = 0;
  for (const KernelTable* kt : simd_tables()) {
    if (kt->pack == nullptr) continue;
    for (TensorType type : kWeightTypes) {
      const int64_t bs = traits_of(type).block_size == 1 ? 32 : traits_of(type).block_size;
      EXPECT_EQ(kt->packed_bytes(type, 15, bs), 0u) << "fewer rows than one group are never packed";
      if (kt->packed_bytes(type, 16, bs) == 0) continue;
      for (int64_t cols : {bs, 3 * bs, 8 * bs}) {
        for (int64_t rows : {16, 37, 64}) {
          for (int64_t n_tok : {1, 2, 3, 4, 5, 11, 16, 35}) {
            const size_t rb = *row_bytes(type, static_cast<uint64_t>(cols));
            std::vector<std::byte> w(rb * static_cast<size_t>(rows));
            std::vector<float> wrow(static_cast<size_t>(cols));
            for (int64_t r = 0; r < rows; ++r) {
              for (auto& v : wrow) v = dist(rng) * 0.1f;
              quantize_row(type, wrow.data(), w.data() + static_cast<size_t>(r) * rb, cols);
            }
            const size_t pb = kt->packed_bytes(type, rows, cols);
            ASSERT_GT(pb, 0u);
            std::vector<std::byte> packed(pb + 64);
            std::byte* pk = packed.data() + (64 - reinterpret_cast<uintptr_t>(packed.data()) % 64) % 64;
            kt->pack(type, rows, cols, w.data(), rb, pk);
            std::vector<float> x(static_cast<size_t>(n_tok * cols));
            for (auto& v : x) v = dist(rng);
            std::vector<float> y_ref(static_cast<size_t>(n_tok * rows)), y_plain(y_ref.size(), -1.0f),
                y(y_ref.size(), -1.0f);
            std::vector<std::byte> scratch(matmul_scratch_bytes(*kt, type, cols, n_tok) + 64);
            MatmulArgs a{type, w.data(), rb, rows, cols, x.data(), cols, n_tok, y_ref.data(), rows, scratch.data()};
            ref_kernels().matmul(a, pool);
            a.y = y_plain.data();
            kt->matmul(a, pool);
            a.y = y.data();
            a.packed = pk;
            kt->matmul(a, pool);
            EXPECT_LT(rel_err(y, y_ref), 4e-3) << kt->name << " " << type_name(type) << " rows " << rows << " cols "
                                               << cols << " tokens " << n_tok;
            EXPECT_LT(rel_err(y, y_plain), 2e-6) << kt->name << " packed vs unpacked " << type_name(type) << " rows "
                                                 << rows << " cols " << cols << " tokens " << n_tok;
            ++checked;
          }
        }
      }
    }
  }
  if (checked == 0) GTEST_SKIP() << "no table on this CPU repacks weights";
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

TEST(KernelTables, ElementwiseOpsMatchRef) {
  auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  std::mt19937 rng(99);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const KernelTable& r = ref_kernels();
  for (const KernelTable* kt : tables) {
    for (int64_t n : {1, 7, 64, 100, 4099}) {
      std::vector<float> x(static_cast<size_t>(n)), w(x.size()), b(x.size());
      for (auto* v : {&x, &w, &b}) for (auto& e : *v) e = dist(rng);
      std::vector<float> y1(x.size()), y2(x.size());
      r.rms_norm(y1.data(), x.data(), w.data(), n, 1e-5f);
      kt->rms_norm(y2.data(), x.data(), w.data(), n, 1e-5f);
      EXPECT_LT(rel_err(y2, y1), 1e-6) << kt->name << " rms_norm n=" << n;
      r.layer_norm(y1.data(), x.data(), w.data(), b.data(), n, 1e-5f);
      kt->layer_norm(y2.data(), x.data(), w.data(), b.data(), n, 1e-5f);
      EXPECT_LT(rel_err(y2, y1), 1e-6) << kt->name << " layer_norm n=" << n;
      y1 = x;
      y2 = x;
      r.softmax(y1.data(), n);
      kt->softmax(y2.data(), n);
      EXPECT_LT(rel_err(y2, y1), 1e-6) << kt->name << " softmax n=" << n;
      y1 = x;
      y2 = x;
      r.swiglu(y1.data(), w.data(), n);
      kt->swiglu(y2.data(), w.data(), n);
      EXPECT_LT(rel_err(y2, y1), 1e-6) << kt->name << " swiglu n=" << n;
    }
  }
}

TEST(KernelTables, AttentionMatchesRef) {
  auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  ThreadPool pool(2);
  for (const KernelTable* kt : tables) {
    for (KvType kv : {KvType::kF32, KvType::kF16}) {
      for (int head_dim : {8, 32, 40, 128}) {
        const int n_head = 4, n_head_kv = 2;
        const int64_t n_ctx = 77, n_tok = 5;
        const int64_t kv_stride = n_head_kv * head_dim;
        std::vector<float> kf(static_cast<size_t>(n_ctx * kv_stride)), vf(kf.size());
        for (auto& e : kf) e = dist(rng);
        for (auto& e : vf) e = dist(rng);
        std::vector<uint16_t> kh(kf.size()), vh(kf.size());
        for (size_t i = 0; i < kf.size(); ++i) {
          kh[i] = fp32_to_fp16(kf[i]);
          vh[i] = fp32_to_fp16(vf[i]);
        }
        std::vector<float> q(static_cast<size_t>(n_tok * n_head * head_dim));
        for (auto& e : q) e = dist(rng);
        const int32_t pos[n_tok] = {0, 10, 40, 75, 76};
        std::vector<float> o1(q.size()), o2(q.size());
        std::vector<float> scratch(attention_scratch_floats(n_ctx, pool.size()) + 1024);
        AttentionArgs a{};
        a.q = q.data();
        a.q_stride = n_head * head_dim;
        a.k = kv == KvType::kF32 ? static_cast<const void*>(kf.data()) : kh.data();
        a.v = kv == KvType::kF32 ? static_cast<const void*>(vf.data()) : vh.data();
        a.kv_stride = kv_stride;
        a.kv_type = kv;
        a.pos = pos;
        a.n_tokens = n_tok;
        a.n_head = n_head;
        a.n_head_kv = n_head_kv;
        a.head_dim = head_dim;
        a.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        a.out = o1.data();
        a.out_stride = n_head * head_dim;
        a.scratch = scratch.data();
        ref_kernels().attention(a, pool);
        a.out = o2.data();
        kt->attention(a, pool);
        EXPECT_LT(rel_err(o2, o1), 1e-5) << kt->name << " head_dim " << head_dim;
      }
    }
  }
}

}  // namespace
}  // namespace hearth::kernels
