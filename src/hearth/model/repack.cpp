#include "hearth/model/repack.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "hearth/core/log.h"
#include "hearth/core/process_stats.h"
#include "hearth/model/model.h"

namespace hearth::model {

void PackedUnmap::operator()(std::byte* p) const {
  if (p != nullptr) ::munmap(p, bytes);
}

uint64_t PackedWeights::packed_size_of(const std::byte* data) const {
  for (const auto& [stored, packed] : sizes_) {
    if (stored == data) return packed;
  }
  return 0;
}

PackedWeights repack_weights(ModelWeights& w, const kernels::KernelTable& kt, uint64_t growth_budget, ThreadPool& pool,
                             std::string_view file_name) {
  PackedWeights out;
  if (kt.pack == nullptr || kt.packed_bytes == nullptr) return out;
  struct Candidate {
    TensorView* t;
    uint64_t stored, packed;
  };
  std::vector<Candidate> all;
  auto consider = [&](TensorView* t) {
    if (!t->valid() || t->packed != nullptr) return;
    const uint64_t per = kt.packed_bytes(t->type, t->ne[1], t->ne[0]);
    if (per == 0) return;
    const auto n_mat = static_cast<uint64_t>(t->ne[2] * t->ne[3]);
    all.push_back({t, t->nb2 * n_mat, per * n_mat});
  };
  for (auto& l : w.layers) {
    for (TensorView* t : {&l.wq, &l.wqkv, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down, &l.ffn_gate_exps,
                          &l.ffn_up_exps, &l.ffn_down_exps}) {
      consider(t);
    }
  }
  consider(&w.output);
  // The packed copy replaces the stored pages, so a layout that keeps the size (within 1/32:
  // Q4_K's unpacked scales) costs no memory. Layouts that grow (f32 scales, 3-bit
  // quants in nibbles, ...) grow the weights; they are taken, least growth first, only while the total growth stays
  // within the budget, so that a model's RSS stays near its file size. The rest are read as stored.
  auto grows = [](const Candidate& c) { return c.packed > c.stored + c.stored / 32; };
  std::stable_sort(all.begin(), all.end(), [&](const Candidate& a, const Candidate& b) {
    return static_cast<double>(a.packed) / static_cast<double>(a.stored) <
           static_cast<double>(b.packed) / static_cast<double>(b.stored);
  });
  std::vector<TensorView*> todo;
  std::vector<std::pair<const std::byte*, uint64_t>> sizes;
  uint64_t growth = 0;
  for (const Candidate& c : all) {
    const uint64_t extra = c.packed > c.stored ? c.packed - c.stored : 0;
    if (grows(c) && (extra > growth_budget || growth > growth_budget - extra)) {
      out.kept_stored_bytes_ += c.stored;
      continue;
    }
    if (grows(c)) growth += extra;
    todo.push_back(c.t);
    sizes.emplace_back(c.t->data, c.packed);
  }
  if (out.kept_stored_bytes_ > 0) {
    log::info(
        "{}: {:.0f} MiB of weights kept in the stored layout: repacking them would grow the weights past "
        "the {:.0f} MiB budget (HEARTH_REPACK=all repacks everything)",
        file_name, static_cast<double>(out.kept_stored_bytes_) / (1 << 20),
        static_cast<double>(growth_budget) / (1 << 20));
  }
  if (todo.empty()) return out;
  // File order in the mapping, as decode reads them.
  std::sort(todo.begin(), todo.end(), [](const TensorView* a, const TensorView* b) { return a->data < b->data; });
  // Offsets first (64-byte aligned, in one mapping), then the copies on the pool's threads.
  std::vector<size_t> per(todo.size()), offset(todo.size());
  size_t total = 0;
  for (size_t i = 0; i < todo.size(); ++i) {
    const TensorView& t = *todo[i];
    per[i] = kt.packed_bytes(t.type, t.ne[1], t.ne[0]);
    offset[i] = total;
    total += (per[i] * static_cast<size_t>(t.ne[2] * t.ne[3]) + 63) / 64 * 64;
  }
  void* mem = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    log::warn("{}: no memory for repacked weights ({} MiB); using the stored layout", file_name, total >> 20);
    return out;
  }
#ifdef MADV_HUGEPAGE
  ::madvise(mem, total, MADV_HUGEPAGE);
#endif
  out.mem_ = std::unique_ptr<std::byte, PackedUnmap>(static_cast<std::byte*>(mem), PackedUnmap{total});
  out.bytes_ = total;
  out.sizes_ = std::move(sizes);
  for (size_t i = 0; i < todo.size(); ++i) {
    TensorView& t = *todo[i];
    t.packed = out.mem_.get() + offset[i];
    t.packed_nb2 = per[i];
    t.packed_isa = kt.name;
  }
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::byte* embd = w.token_embd.data;
  // One weight per claim: weights differ in size by orders of magnitude, and the copies are
  // independent (disjoint destinations), so the bytes do not depend on the thread count.
  pool.parallel_for(static_cast<int64_t>(todo.size()), 1, [&](int64_t begin, int64_t end) {
    for (auto i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i) {
      const TensorView& t = *todo[i];
      const auto n_mat = static_cast<size_t>(t.ne[2] * t.ne[3]);
      for (size_t m = 0; m < n_mat; ++m) {
        kt.pack(t.type, t.ne[1], t.ne[0], t.data + m * t.nb2, t.nb1, const_cast<std::byte*>(t.packed) + m * per[i]);
      }
      // The stored form is no longer read on this table's path: drop its pages from this
      // process (they fault back in from the page cache if another table reads them). A tied
      // output matrix is also the token embedding, which stays in use.
      if (t.data != embd) {
        const auto b = (reinterpret_cast<uintptr_t>(t.data) + page - 1) / page * page;
        const auto e = (reinterpret_cast<uintptr_t>(t.data) + t.nb2 * n_mat) / page * page;
        if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
      }
    }
  });
  out.isa_ = kt.name;
  log::debug("{}: repacked {:.1f} MiB of weights for the {} kernels", file_name,
             static_cast<double>(out.bytes_) / (1 << 20), kt.name);
  return out;
}

void Model::repack(const kernels::KernelTable& kt, uint64_t growth_budget, int n_threads) {
  if (kt.pack == nullptr || kt.packed_bytes == nullptr || !packed_.isa().empty()) return;
  ThreadPool pool(n_threads > 0 ? n_threads : physical_core_count());
  packed_ = repack_weights(w_, kt, growth_budget, pool, file_.name());
}

}  // namespace hearth::model
