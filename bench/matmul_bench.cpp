// Matmul throughput per kernel table, weight type and token count, on a TinyLlama-sized
// ffn_up (2048 -> 5632), packed (where the table repacks) and as stored. Reports weight
// bytes/s (decode is bandwidth-bound) and multiply-adds/s (prefill is compute-bound).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/quant.h"

namespace {

using hearth::TensorType;
using namespace hearth::kernels;

constexpr int64_t kCols = 2048, kRows = 5632;

struct Weights {
  std::vector<std::byte> stored;
  std::byte* packed = nullptr;
  size_t row_bytes = 0;
};

const Weights& weights(TensorType t, const KernelTable& kt) {
  static std::vector<std::pair<std::string, std::unique_ptr<Weights>>> cache;
  const std::string key = std::string(type_name(t)) + "/" + std::string(kt.name);
  for (auto& [k, w] : cache)
    if (k == key) return *w;
  auto w = std::make_unique<Weights>();
  w->row_bytes = *row_bytes(t, kCols);
  w->stored.resize(w->row_bytes * kRows);
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> row(kCols);
  for (int64_t r = 0; r < kRows; ++r) {
    for (auto& v : row) v = d(rng);
    quantize_row(t, row.data(), w->stored.data() + r * w->row_bytes, kCols);
  }
  if (kt.pack != nullptr && kt.packed_bytes(t, kRows, kCols) > 0) {
    w->packed = static_cast<std::byte*>(::operator new[](kt.packed_bytes(t, kRows, kCols), std::align_val_t{64}));
    kt.pack(t, kRows, kCols, w->stored.data(), w->row_bytes, w->packed);
  }
  cache.emplace_back(key, std::move(w));
  return *cache.back().second;
}

void BM_Matmul(benchmark::State& state, TensorType t, const KernelTable* kt, bool use_packed) {
  const int64_t n_tok = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const Weights& w = weights(t, *kt);
  if (use_packed && w.packed == nullptr) {
    state.SkipWithError("this table does not pack the type");
    return;
  }
  hearth::ThreadPool pool(threads);
  std::vector<float> x(static_cast<size_t>(n_tok * kCols), 0.5f), y(static_cast<size_t>(n_tok * kRows));
  std::vector<std::byte> scratch(matmul_scratch_bytes(*kt, t, kCols, n_tok) + 64);
  MatmulArgs a{t, w.stored.data(), w.row_bytes, kRows, kCols, x.data(), kCols, n_tok, y.data(), kRows, scratch.data()};
  if (use_packed) a.packed = w.packed;
  for (auto _ : state) {
    kt->matmul(a, pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.row_bytes * kRows));
  state.counters["MAC/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kRows * kCols * n_tok, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  for (const KernelTable* kt : available_kernels()) {
    for (TensorType t : {TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0, TensorType::Q2_K, TensorType::Q3_K,
                         TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
      for (bool packed : {false, true}) {
        if (packed && (kt->pack == nullptr || kt->packed_bytes(t, kRows, kCols) == 0)) continue;
        if (kt->name == "ref" && packed) continue;
        const std::string name =
            "matmul/" + std::string(kt->name) + "/" + std::string(type_name(t)) + (packed ? "/packed" : "");
        auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, t, kt, packed);
        b->ArgNames({"tokens", "threads"})
            ->Args({1, 1})
            ->Args({1, 2})
            ->Args({64, 1})
            ->Args({64, 2})
            ->Args({256, 1})
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
