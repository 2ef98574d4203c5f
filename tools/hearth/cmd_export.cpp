// `hearth export BASE --lora FILE[:SCALE]... --out merged.gguf [--type f32|f16]`: a copy of BASE
// with the adapters merged into its weights (model/lora_merge.h), which then runs without them
// and quantizes with `hearth quantize`.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "common_options.h"
#include "hearth/model/lora_merge.h"
#include "hearth/model/model.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct ExportOptions {
  ModelOptions m;
  std::vector<std::string> lora;
  std::string out;
  std::string type = "f32";
};

Status run(const ExportOptions& o) {
  if (o.lora.empty()) return make_error(ErrorCode::kInvalidArgument, "export needs at least one --lora FILE[:SCALE]");
  HEARTH_ASSIGN_OR_RETURN(const std::vector<LoraSpec> specs, parse_lora_specs(o.lora));
  const TensorType type = o.type == "f16" ? TensorType::F16 : TensorType::F32;
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(o.m.model, "export", o.m.allow_unsigned));
  std::error_code ec;
  if (std::filesystem::equivalent(arg.path, o.out, ec)) {
    return make_error(ErrorCode::kInvalidArgument, "--out {} is the base model itself; choose another file", o.out);
  }
  // The stored weights are read as they are (no repacking: nothing runs here).
  auto loaded = [&]() -> Result<std::unique_ptr<model::Model>> {
    HEARTH_ASSIGN_OR_RETURN(auto map, map_model(arg));
    return model::Model::load(std::move(map), nullptr);
  }();
  record_load(arg, loaded.status());
  if (!loaded.ok()) return loaded.status();
  const model::Model& base = **loaded;
  HEARTH_ASSIGN_OR_RETURN(auto adapters, load_lora_adapters(specs, base, o.m.allow_unsigned));
  size_t n_merged = 0;
  for (const auto& t : base.gguf().tensors()) {
    for (const auto& u : adapters) {
      if (u.adapter->find(t.name) != nullptr) {
        ++n_merged;
        break;
      }
    }
  }
  HEARTH_TRY(model::merge_lora(base, adapters, o.out, type));
  std::printf("wrote %s: %zu of %zu tensors merged (%s) from %zu adapter%s\n", o.out.c_str(), n_merged,
              base.gguf().tensors().size(), o.type.c_str(), adapters.size(), adapters.size() == 1 ? "" : "s");
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto* sub = app.add_subcommand("export", "merge LoRA adapters into a base model (writes a new GGUF)");
  add_model_options(sub, o->m, "base GGUF model: a file or a store reference");
  add_lora_option(sub, o->lora, "LoRA adapter FILE[:SCALE] to merge (scale default 1; repeatable)");
  sub->add_option("-o,--out", o->out, "output GGUF file")->required();
  sub->add_option("--type", o->type, "type of the merged tensors: f32 or f16 (the others keep theirs)")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16"}));
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(78, setup);

}  // namespace
}  // namespace hearth::cli
