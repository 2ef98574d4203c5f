// libFuzzer target: parse_gguf over arbitrary bytes must never crash, abort, leak or read out of
// bounds; when it succeeds, every view it returns must lie inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "hearth/gguf/gguf.h"

namespace {

bool inside(std::span<const std::byte> outer, const void* p, size_t n) {
  auto* b = static_cast<const std::byte*>(p);
  return n == 0 ||
         (b >= outer.data() && n <= outer.size() && b - outer.data() <= static_cast<ptrdiff_t>(outer.size() - n));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto r = hearth::gguf::parse_gguf(bytes, "fuzz.gguf");
  if (!r.ok()) {
    if (r.status().message().empty()) std::abort();
    return 0;
  }
  const auto& f = *r;
  for (const auto& kv : f.metadata()) {
    if (!inside(bytes, kv.key.data(), kv.key.size())) std::abort();
    if (f.find(kv.key) != &kv) std::abort();
    if (const auto* a = std::get_if<hearth::gguf::ArrayValue>(&kv.value)) {
      if (!inside(bytes, a->raw.data(), a->raw.size())) std::abort();
      for (auto s : a->strings) {
        if (!inside(bytes, s.data(), s.size())) std::abort();
      }
    }
    // Typed getters must not crash on any type.
    (void)f.get_uint(kv.key);
    (void)f.get_int(kv.key);
    (void)f.get_f32(kv.key);
    (void)f.get_string(kv.key);
  }
  for (const auto& t : f.tensors()) {
    if (!inside(bytes, t.data.data(), t.data.size())) std::abort();
    if (t.data.size() != t.n_bytes || t.offset % f.alignment() != 0) std::abort();
    if (f.find_tensor(t.name) != &t) std::abort();
  }
  return 0;
}
