// read_gguf_facts: the store's one use of the gguf module (see model_config.h).
#include <algorithm>
#include <map>
#include <set>

#include "hearth/core/mapped_file.h"
#include "hearth/gguf/gguf.h"
#include "hearth/store/model_config.h"

namespace hearth::store {
namespace {

// llama_ftype values (llama.h) for the file types hearth meets; other values fall back to the
// dominant tensor type.
const char* file_type_name(uint32_t ft) {
  switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 25: return "IQ4_NL";
    case 30: return "IQ4_XS";
    case 32: return "BF16";
    default: return nullptr;
  }
}

}  // namespace

Result<ModelFacts> read_gguf_facts(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(path));
  return read_gguf_facts(map.bytes(), path);
}

Result<ModelFacts> read_gguf_facts(std::span<const std::byte> bytes, const std::string& name) {
  HEARTH_ASSIGN_OR_RETURN(gguf::GgufFile f, gguf::parse_gguf(bytes, name));
  ModelFacts facts;
  if (auto a = f.get_string("general.architecture"); a.ok()) facts.architecture = std::string(*a);
  if (auto n = f.get_string("general.name"); n.ok()) facts.name = std::string(*n);
  if (auto gt = f.get_string("general.type"); gt.ok() && *gt == "adapter") {
    ModelFacts::Adapter a;
    a.type = std::string(f.get_string("adapter.type").value_or(""));
    a.alpha = f.get_f32("adapter.lora.alpha").value_or(0.0f);
    std::set<std::string> kinds;
    for (const auto& t : f.tensors()) {
      // "blk.3.attn_q.weight.lora_a": rank in ne[1], kind "attn_q".
      const std::string_view n = t.name;
      if (!n.ends_with(".lora_a")) continue;
      if (t.n_dims == 2) a.rank = std::max<uint64_t>(a.rank, t.ne[1]);
      std::string_view base = n.substr(0, n.size() - 7);
      if (base.ends_with(".weight")) base.remove_suffix(7);
      if (base.starts_with("blk.")) {
        const size_t dot = base.find('.', 4);
        if (dot != std::string_view::npos) base.remove_prefix(dot + 1);
      }
      kinds.emplace(base);
    }
    a.targets.assign(kinds.begin(), kinds.end());
    facts.adapter = std::move(a);
  }
  std::map<std::string, uint64_t> by_type;
  for (const auto& t : f.tensors()) {
    facts.parameters += t.n_elements;
    by_type[std::string(type_name(t.type))] += t.n_elements;
  }
  if (auto ft = f.get_u32("general.file_type"); ft.ok() && file_type_name(*ft) != nullptr) {
    facts.quantization = file_type_name(*ft);
  } else {
    uint64_t best = 0;
    for (const auto& [type, n] : by_type) {
      if (n > best) {
        best = n;
        facts.quantization = type;
      }
    }
  }
  return facts;
}

}  // namespace hearth::store
