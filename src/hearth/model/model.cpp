#include "hearth/model/model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "hearth/core/log.h"
#include "hearth/model/architecture.h"

namespace hearth::model {

namespace {

// HEARTH_REPACK=0: read every weight as stored; =all: repack every weight the table packs,
// however much memory the expanded layouts take; unset or 1: repack within the budget.
std::pair<const kernels::KernelTable*, uint64_t> repack_from_env() {
  const char* env = std::getenv("HEARTH_REPACK");
  const bool repack = env == nullptr || std::strcmp(env, "0") != 0;
  const uint64_t budget = env != nullptr && std::strcmp(env, "all") == 0 ? UINT64_MAX : Model::kRepackGrowthBudget;
  return {repack ? &kernels::active_kernels() : nullptr, budget};
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  auto [kt, budget] = repack_from_env();
  return load(path, kt, budget);
}

Result<std::unique_ptr<Model>> Model::load(std::shared_ptr<const MappedFile> mapping) {
  auto [kt, budget] = repack_from_env();
  return load(std::move(mapping), kt, budget);
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const kernels::KernelTable* kernels,
                                           uint64_t growth_budget) {
  HEARTH_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(path));
  return load(std::make_shared<const MappedFile>(std::move(map)), kernels, growth_budget);
}

Result<std::unique_ptr<Model>> Model::load(std::shared_ptr<const MappedFile> mapping,
                                           const kernels::KernelTable* kernels, uint64_t growth_budget) {
  if (mapping == nullptr) return make_error(ErrorCode::kInvalidArgument, "Model::load: no mapping");
  auto m = std::unique_ptr<Model>(new Model());
  m->map_ = std::move(mapping);
  try {
    HEARTH_ASSIGN_OR_RETURN(m->file_, gguf::parse_gguf(m->map_->bytes(), m->map_->path()));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, m->map_->path(), ": out of memory while opening gguf");
  }
  const gguf::GgufFile& f = m->file_;
  auto arch = f.get_string("general.architecture");
  if (!arch.ok()) {
    return make_error(ErrorCode::kInvalidArgument, f.name(),
                      ": metadata 'general.architecture' is missing or not a string; is this a model file?");
  }
  const Architecture* a = find_architecture(*arch);
  if (a == nullptr) {
    std::string known;
    for (auto n : architecture_names()) known += (known.empty() ? "" : ", ") + std::string(n);
    return make_error(ErrorCode::kUnimplemented, f.name(), ": architecture '", std::string(*arch),
                      "' is not supported (supported: ", known, ")");
  }
  if (f.tensors().empty()) {
    return make_error(ErrorCode::kInvalidArgument, f.name(),
                      ": the file has no tensors (a vocab-only file cannot be run)");
  }
  m->hp_.arch = std::string(*arch);
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (embd == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, f.name(), ": tensor 'token_embd.weight' is missing");
  }
  if (embd->ne[1] < 1 || embd->ne[1] > (uint64_t{1} << 24)) {
    return make_error(ErrorCode::kInvalidArgument, f.name(), ": token_embd.weight has an implausible vocab size ",
                      std::to_string(embd->ne[1]));
  }
  m->hp_.n_vocab = static_cast<int64_t>(embd->ne[1]);
  WeightBinder binder(f);
  HEARTH_TRY(a->load(f, m->hp_, m->w_, binder));
  m->block_ = a->block(m->hp_);
  for (const auto& name : binder.unused())
    log::warn("{}: tensor '{}' is not used by the {} architecture", f.name(), name, a->name);
  if (auto toks = f.get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING); toks.ok()) {
    // One embedding row per token, no more and no fewer: a smaller vocabulary leaves rows that
    // sampling can pick but the tokenizer cannot decode.
    if (static_cast<int64_t>((*toks)->count) != m->hp_.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, f.name(), ": the tokenizer has ", std::to_string((*toks)->count),
                        " tokens but token_embd.weight has ", std::to_string(m->hp_.n_vocab),
                        " rows; they must match (the file is corrupt or was converted wrongly)");
    }
  }
  if (kernels != nullptr) m->repack(*kernels, growth_budget);
  return m;
}

void Model::repack(const kernels::KernelTable& kt, uint64_t growth_budget) {
  if (kt.pack == nullptr || kt.packed_bytes == nullptr || !packed_isa_.empty()) return;
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
  for (auto& l : w_.layers) {
    for (TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down, &l.ffn_gate_exps,
                          &l.ffn_up_exps, &l.ffn_down_exps}) {
      consider(t);
    }
  }
  consider(&w_.output);
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
  uint64_t growth = 0;
  kept_stored_bytes_ = 0;
  for (const Candidate& c : all) {
    const uint64_t extra = c.packed > c.stored ? c.packed - c.stored : 0;
    if (grows(c) && (extra > growth_budget || growth > growth_budget - extra)) {
      kept_stored_bytes_ += c.stored;
      continue;
    }
    if (grows(c)) growth += extra;
    todo.push_back(c.t);
    repacked_.emplace_back(c.t->data, c.packed);
  }
  if (kept_stored_bytes_ > 0) {
    log::info(
        "{}: {:.0f} MiB of weights kept in the stored layout: repacking them would grow the weights past "
        "the {:.0f} MiB budget (HEARTH_REPACK=all repacks everything)",
        file_.name(), static_cast<double>(kept_stored_bytes_) / (1 << 20),
        static_cast<double>(growth_budget) / (1 << 20));
  }
  if (todo.empty()) return;
  // File order in the mapping, as decode reads them.
  std::sort(todo.begin(), todo.end(), [](const TensorView* a, const TensorView* b) { return a->data < b->data; });
  // Offsets first (64-byte aligned, in one mapping), then the copies on every core.
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
    log::warn("{}: no memory for repacked weights ({} MiB); using the stored layout", file_.name(), total >> 20);
    return;
  }
#ifdef MADV_HUGEPAGE
  ::madvise(mem, total, MADV_HUGEPAGE);
#endif
  packed_ = std::unique_ptr<std::byte, PackedUnmap>(static_cast<std::byte*>(mem), PackedUnmap{total});
  packed_bytes_ = total;
  for (size_t i = 0; i < todo.size(); ++i) {
    TensorView& t = *todo[i];
    t.packed = packed_.get() + offset[i];
    t.packed_nb2 = per[i];
    t.packed_isa = kt.name;
  }
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::byte* embd = w_.token_embd.data;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < todo.size(); i = next.fetch_add(1)) {
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
  };
  const unsigned n = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), 16));
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n; ++i) threads.emplace_back(work);
  work();
  for (auto& th : threads) th.join();
  packed_isa_ = kt.name;
  log::debug("{}: repacked {:.1f} MiB of weights for the {} kernels", file_.name(),
             static_cast<double>(packed_bytes_) / (1 << 20), kt.name);
}

void PackedUnmap::operator()(std::byte* p) const {
  if (p != nullptr) ::munmap(p, bytes);
}

uint64_t Model::bytes_read(const gguf::TensorInfo& t, std::string_view isa) const {
  if (isa == packed_isa_) {
    for (const auto& [data, bytes] : repacked_) {
      if (data == t.data.data()) return bytes;
    }
  }
  return t.n_bytes;
}

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& t : file_.tensors()) total += t.n_bytes;
  return total;
}

}  // namespace hearth::model
