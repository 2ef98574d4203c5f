// The ModelPack model config (application/vnd.cncf.model.config.v1+json) built from a GGUF
// file's own facts: architecture, parameter count, quantization; for a LoRA adapter
// (general.type = adapter) also its rank, alpha and adapted tensors, under "org.hearth.adapter".
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/store/digest.h"

namespace hearth::store {

struct ModelFacts {
  std::string name;          // general.name, if present
  std::string architecture;  // general.architecture, e.g. "llama"
  uint64_t parameters = 0;   // sum of tensor element counts
  std::string quantization;  // from general.file_type, else the most common tensor type
  // A LoRA adapter (general.type = "adapter", adapter.type = "lora"): architecture is its base's.
  struct Adapter {
    std::string type;                  // "lora"
    float alpha = 0.0f;                // adapter.lora.alpha
    uint64_t rank = 0;                 // the largest rank of its factors
    std::vector<std::string> targets;  // adapted tensor kinds, e.g. "attn_q", "ffn_down"
  };
  std::optional<Adapter> adapter;  // absent for a model
  std::string format = "gguf";     // ModelPack config.format: "gguf" or "onnx"
  int64_t opset = 0;               // an ONNX model's default-domain opset
};

// Reads the facts of a GGUF file (through the gguf module).
Result<ModelFacts> read_gguf_facts(const std::string& path);
// The same from bytes already in memory (a mapping), `name` for messages.
Result<ModelFacts> read_gguf_facts(std::span<const std::byte> bytes, const std::string& name);

// Reads the facts of an ONNX model (through the onnx module's hostile-input loader; external
// data is refused): its graph's name, initializer element count, most common initializer type
// ("float32"), opset; architecture "onnx".
Result<ModelFacts> read_onnx_facts(std::span<const std::byte> bytes, const std::string& name);

// The same parse (GGUF, or ONNX when `onnx`) run in the parser sandbox (hearth/sandbox: a
// confined child with no network, no processes, no files opened, no writes): the model parse of
// import, pull and bundle import. A crash or forbidden call in the parser is an error here.
Result<ModelFacts> read_model_facts_confined(std::span<const std::byte> bytes, const std::string& name, bool onnx);

// "260K", "6.7B": the ModelPack paramSize form (count with at most one decimal + scale letter).
std::string param_size_string(uint64_t parameters);

// The config document. `layer_digests` are the weight layers in manifest order (modelfs.diff_ids).
std::string model_config_json(const ModelFacts& facts, const std::vector<Digest>& layer_digests);

// Reads the facts back from a config document (for `inspect`); missing fields stay empty.
Result<ModelFacts> parse_model_config(std::string_view json);

}  // namespace hearth::store
