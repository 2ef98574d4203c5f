#include "hearth/eval/bench.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include <sys/mman.h>

#include "hearth/core/process_stats.h"
#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/engine/speculative.h"
#include "hearth/model/context.h"

namespace hearth::eval {
namespace {

void mean_sd(const std::vector<double>& v, double& mean, double& sd) {
  mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  sd = 0;
  for (double x : v) sd += (x - mean) * (x - mean);
  sd = v.size() > 1 ? std::sqrt(sd / static_cast<double>(v.size() - 1)) : 0.0;
}

int32_t argmax(std::span<const float> l) {
  return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
}

}  // namespace

Result<BenchResult> run_bench(const model::Model& model, const BenchParams& p) {
  const model::HParams& hp = model.hparams();
  if (p.n_prompt < 0 || p.n_gen < 0 || p.reps < 1) {
    return make_error(ErrorCode::kInvalidArgument, "bench: -p and -n must be >= 0 and -r >= 1");
  }
  if (p.depth < 0 || p.depth > p.n_prompt) {
    return make_error(ErrorCode::kInvalidArgument,
                      "bench: --depth {} must be between 0 and -p ({}): the prompt fills that context", p.depth,
                      p.n_prompt);
  }
  const bool speculative = p.draft != nullptr || p.draft_ngram;
  if (speculative && p.n_prompt == 0) {
    return make_error(ErrorCode::kInvalidArgument, "bench: drafts need a prompt to continue (-p > 0)");
  }
  model::ContextParams cp;
  cp.n_ctx = std::max<int64_t>(p.n_prompt + p.n_gen + (speculative ? p.draft_max + 1 : 0), 16);
  cp.n_batch = std::max<int64_t>(p.n_prompt, 1);
  cp.n_threads = p.n_threads;
  cp.kv_type = p.kv_type;
  HEARTH_ASSIGN_OR_RETURN(auto ctx, model::Context::create(model, cp));
  BenchResult r;
  r.isa = std::string(ctx->kernels().name);
  r.threads = ctx->n_threads();
  // Bytes streamed per decode step: every weight except the embedding table (one row), in the
  // layout the matmuls read (repacked copies can be larger than stored).
  for (const auto& t : model.gguf().tensors()) {
    if (t.name != "token_embd.weight" || !model.weights().output.valid() ||
        model.weights().output.data == model.weights().token_embd.data) {
      r.decode_bytes_per_token += model.bytes_read(t, r.isa);
    }
  }
  if (hp.n_expert > 0) {
    // Only n_expert_used of n_expert experts are read per token.
    uint64_t exps = 0;
    for (const auto& t : model.gguf().tensors()) {
      if (t.name.find("_exps.") != std::string_view::npos) exps += model.bytes_read(t, r.isa);
    }
    r.decode_bytes_per_token -=
        exps - exps / static_cast<uint64_t>(hp.n_expert) * static_cast<uint64_t>(hp.n_expert_used);
  }
  std::unique_ptr<model::Context> draft_ctx;
  if (p.draft != nullptr) {
    if (p.draft->hparams().n_vocab != hp.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "bench: the draft's vocabulary has {} tokens, the model's {}",
                        p.draft->hparams().n_vocab, hp.n_vocab);
    }
    HEARTH_ASSIGN_OR_RETURN(draft_ctx, model::Context::create(*p.draft, cp));
  }
  uint64_t rng = 0x1234567ull;
  uint64_t fnv = 0xcbf29ce484222325ull;
  for (int rep = 0; rep < p.reps; ++rep) {
    std::vector<model::BatchToken> batch(static_cast<size_t>(p.n_prompt));
    if (p.n_prompt > 0) {
      for (int64_t i = 0; i < p.n_prompt; ++i) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        batch[static_cast<size_t>(i)] = {static_cast<int32_t>((rng >> 33) % static_cast<uint64_t>(hp.n_vocab)),
                                         static_cast<int32_t>(i), 0, i + 1 == p.n_prompt};
      }
      const double t0 = now_seconds();
      HEARTH_TRY(ctx->decode(batch));
      r.prefill_tok_s.push_back(static_cast<double>(p.n_prompt) / (now_seconds() - t0));
    }
    if (p.n_gen > 0) {
      // Greedy generation from position `depth`: the prompt's cache rows below it are the
      // context; rows from it on are rewritten in order before any query reads them.
      int32_t tok = p.n_prompt > 0 ? argmax(ctx->logits(0)) : 1;
      int32_t pos = static_cast<int32_t>(p.depth);
      const double t0 = now_seconds();
      for (int64_t i = 0; i < p.n_gen; ++i) {
        model::BatchToken t{tok, pos++, 0, true};
        HEARTH_TRY(ctx->decode({&t, 1}));
        tok = argmax(ctx->logits(0));
        if (rep == 0) {
          for (int b = 0; b < 4; ++b) {
            fnv ^= static_cast<uint64_t>((tok >> (8 * b)) & 0xff);
            fnv *= 0x100000001b3ull;
          }
        }
      }
      r.decode_tok_s.push_back(static_cast<double>(p.n_gen) / (now_seconds() - t0));
    }
    if (speculative && p.n_gen > 0) {
      // Again from the prompt (untimed, the draft's too), then n_gen tokens with drafts.
      HEARTH_TRY(ctx->decode(batch));
      std::vector<int32_t> history;
      for (const auto& b : batch) history.push_back(b.token);
      std::unique_ptr<engine::Drafter> drafter;
      if (draft_ctx) {
        // The drafter owns the draft's context for this rep and gives it back after.
        drafter = std::make_unique<engine::ModelDrafter>(std::move(draft_ctx));
        HEARTH_TRY(drafter->propose(history, 0).status());
      } else {
        drafter = std::make_unique<engine::NgramDrafter>();
      }
      int64_t generated = 0;
      auto sample = [](std::span<const float> l) -> Result<int32_t> { return argmax(l); };
      auto emit = [&](int32_t) -> Result<bool> { return ++generated < p.n_gen; };
      const double t0 = now_seconds();
      HEARTH_ASSIGN_OR_RETURN(engine::SpeculativeStats st,
                              engine::speculative_decode(*ctx, *drafter, p.draft_max, history, sample, emit));
      r.spec_decode_tok_s.push_back(static_cast<double>(generated) / (now_seconds() - t0));
      r.draft_proposed += st.proposed;
      r.draft_accepted += st.accepted;
      if (auto* md = dynamic_cast<engine::ModelDrafter*>(drafter.get())) draft_ctx = md->release_context();
    }
  }
  if (!r.spec_decode_tok_s.empty()) mean_sd(r.spec_decode_tok_s, r.spec_decode_mean, r.spec_decode_sd);
  r.logits_checksum = fnv;
  if (!r.prefill_tok_s.empty()) mean_sd(r.prefill_tok_s, r.prefill_mean, r.prefill_sd);
  if (!r.decode_tok_s.empty()) mean_sd(r.decode_tok_s, r.decode_mean, r.decode_sd);
  r.decode_gb_s = r.decode_mean * static_cast<double>(r.decode_bytes_per_token) / 1e9;
  return r;
}

double measure_read_bandwidth(int n_threads, uint64_t bytes) {
  // Read the way decode reads its (repacked) weights: huge pages where the kernel gives them,
  // each thread one long contiguous run, with the active table's widest loads. A scalar probe
  // over 4 KiB pages under-reports this machine by a third.
  const uint64_t avail = available_memory_bytes();
  if (avail > 0) bytes = std::min<uint64_t>(bytes, avail / 4);
  const int n = n_threads > 0 ? n_threads : physical_core_count();
  const size_t slice = static_cast<size_t>(bytes / static_cast<uint64_t>(n)) / 4096 * 4096;
  if (slice == 0) return 0.0;
  const size_t total = slice * static_cast<size_t>(n);
  void* mem = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 0.0;
#ifdef MADV_HUGEPAGE
  ::madvise(mem, total, MADV_HUGEPAGE);
#endif
  auto* base = static_cast<std::byte*>(mem);
  const kernels::KernelTable& kt = kernels::active_kernels();
  struct Probe {
    std::byte* base;
    size_t slice;
    const kernels::KernelTable* kt;
    std::atomic<uint64_t> sink{0};
    bool fill = true;
  } probe{base, slice, &kt};
  ThreadPool pool(n);
  auto job = [](void* c, int i, int) {
    auto* pr = static_cast<Probe*>(c);
    std::byte* mine = pr->base + pr->slice * static_cast<size_t>(i);
    if (pr->fill) {
      std::memset(mine, i + 1, pr->slice);  // first touch by the reader: its own node's pages
    } else {
      pr->sink.fetch_add(pr->kt->read_sum(mine, pr->slice), std::memory_order_relaxed);
    }
  };
  pool.run(job, &probe);
  probe.fill = false;
  double best = 0.0;
  for (int rep = 0; rep < 4; ++rep) {
    const double t0 = now_seconds();
    pool.run(job, &probe);
    const double el = now_seconds() - t0;
    best = std::max(best, static_cast<double>(total) / el / 1e9);
  }
  ::munmap(mem, total);
  return probe.sink.load() == 1 ? best + 0.0 : best;  // the sum is used: the reads stay
}

}  // namespace hearth::eval
