// libFuzzer target: LoraAdapter::parse over arbitrary bytes, against a tiny random llama base
// (n_embd 16, 2 layers, the LoRA tests' fixture, written to a temporary file once at start),
// must never crash, abort, leak or read out of bounds. When it accepts an adapter, every factor
// must be bound to a base weight of its shape, and the adapter must then run: set_adapters and
// one decode of two tokens through the adapted matmuls.
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "hearth/model/context.h"
#include "hearth/model/lora_adapter.h"
#include "hearth/model/model.h"
#include "lora_fixture.h"

namespace {

std::unique_ptr<hearth::model::Model> g_base;

}  // namespace

// The seeds: two small adapters for the base (F32 rank 2 on q and ffn_down, F16 rank 1 on k and
// ffn_up), written into $HEARTH_FUZZ_SEED_DIR (the corpus, before libFuzzer reads it) when set,
// so that no binary file is kept in the repository.
void write_seeds(const hearth::testing::LoraBase& base) {
  const char* dir = std::getenv("HEARTH_FUZZ_SEED_DIR");
  if (dir == nullptr || *dir == '\0') return;
  hearth::testing::LoraFile f32(base, {"blk.0.attn_q.weight", "blk.1.ffn_down.weight"}, 2, 11);
  hearth::testing::LoraFile f16(base, {"blk.1.attn_k.weight", "blk.0.ffn_up.weight"}, 1, 12, 4.0f);
  for (auto& f : f16.factors) f.type = hearth::TensorType::F16;
  const std::filesystem::path d(dir);
  if (!f32.write((d / "seed_q_down_f32.gguf").string()) || !f16.write((d / "seed_k_up_f16.gguf").string())) {
    std::fprintf(stderr, "lora_adapter_fuzz: cannot write the seeds into %s\n", dir);
    std::abort();
  }
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string path = (std::filesystem::temp_directory_path() / "hearth-lora-fuzz-XXXXXX").string();
  const int fd = mkstemp(path.data());
  if (fd < 0) std::abort();
  close(fd);
  const hearth::testing::LoraBase fixture;
  if (!fixture.write(path)) std::abort();
  write_seeds(fixture);
  auto m = hearth::model::Model::load(path);
  std::filesystem::remove(path);  // the mapping stays valid
  if (!m.ok()) {
    std::fprintf(stderr, "lora_adapter_fuzz: cannot load the base: %s\n", m.status().message().c_str());
    std::abort();
  }
  g_base = std::move(*m);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::model;
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto r = LoraAdapter::parse(bytes, "fuzz-adapter.gguf", *g_base);
  if (!r.ok()) {
    if (r.status().message().empty()) std::abort();
    return 0;
  }
  const LoraAdapter& a = **r;
  if (a.weights().empty() || !(a.alpha() > 0.0f) || !std::isfinite(a.alpha())) std::abort();
  for (const LoraWeight& w : a.weights()) {
    if (w.target == nullptr || a.find(w.target) != &w || a.find(w.name) != &w) std::abort();
    if (w.cols != w.target->ne[0] || w.rows != w.target->ne[1]) std::abort();
    if (w.rank < 1 || w.rank > LoraAdapter::kMaxRank || w.rank > a.max_rank()) std::abort();
    if (w.a.size() != static_cast<size_t>(w.rank * w.cols) || w.b.size() != static_cast<size_t>(w.rank * w.rows)) {
      std::abort();
    }
  }
  // The accepted adapter runs: two tokens through every adapted weight.
  ContextParams cp;
  cp.n_ctx = 8;
  cp.n_batch = 8;
  cp.n_threads = 1;
  auto ctx = Context::create(*g_base, cp);
  if (!ctx.ok()) std::abort();
  if (!(*ctx)->set_adapters(0, {LoraUse{*r, 0.5f}}).ok()) std::abort();
  const BatchToken batch[] = {{1, 0, 0, false}, {5, 1, 0, true}};
  if (!(*ctx)->decode(batch).ok()) std::abort();
  // Any value is allowed (huge finite factors may overflow to inf and NaN); the logits are
  // read so that the sanitizers see every element.
  float sum = 0.0f;
  for (float x : (*ctx)->logits(0)) sum += x;
  volatile float sink = sum;
  (void)sink;
  return 0;
}
