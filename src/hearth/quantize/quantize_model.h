// Quantizes a GGUF model by recipe: chooses each tensor's type (recipe.h), converts the
// weights with the reference quantizers (optionally importance-weighted by an imatrix) on N
// threads, and streams a standard GGUF file out atomically (temp file, fsync, rename; a failed
// or full-disk write leaves nothing behind). Metadata is copied with general.file_type and
// general.quantization_version (2) set, plus a note key (hearth.quantize.note) and, with an
// imatrix, the ecosystem's quantize.imatrix.* keys. Tensors are written in the ecosystem's
// order (non-layer tensors first, then by layer, by name within each).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/tensor_type.h"
#include "hearth/eval/synthetic.h"
#include "hearth/gguf/gguf.h"
#include "hearth/quantize/imatrix.h"
#include "hearth/quantize/recipe.h"

namespace hearth::quantize {

struct QuantizeParams {
  Recipe recipe;
  int n_threads = 0;              // 0: all hardware threads
  bool allow_requantize = false;  // accept quantized input tensors (dequantized first)
  const Imatrix* imatrix = nullptr;
  std::string imatrix_name;  // recorded in quantize.imatrix.file
  std::string tool_version;  // recorded in the note ("hearth 0.1.0")
};

struct TensorPlan {
  std::string name;
  std::vector<uint64_t> ne;
  TensorType from;
  TensorType to;
  bool quantized = false;  // converted (false: bytes copied unchanged)
  bool fallback = false;
  std::string note;  // the fallback, if any
  bool used_imatrix = false;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

struct QuantizeProgress {
  size_t index = 0;  // tensors done
  size_t count = 0;
  std::string_view name;
  uint64_t bytes_in_done = 0;
  uint64_t bytes_in_total = 0;
  double seconds = 0.0;
};
using ProgressFn = std::function<void(const QuantizeProgress&)>;

struct QuantizeReport {
  std::vector<TensorPlan> tensors;  // in output order
  int n_fallback = 0;
  uint64_t bytes_in = 0;  // tensor data
  uint64_t bytes_out = 0;
  double seconds = 0.0;
};

// The model facts the recipes need, read from the file's metadata.
Result<ModelFacts> model_facts(const gguf::GgufFile& file);

// Every tensor's type decision, without converting anything (also validates the request:
// unsupported or requantized input types, imatrix shapes).
Result<std::vector<TensorPlan>> plan_quantization(const gguf::GgufFile& in, const QuantizeParams& params);

// Quantizes a parsed file (it may live in memory) into `out_path`.
Result<QuantizeReport> quantize_gguf(const gguf::GgufFile& in, const std::string& out_path,
                                     const QuantizeParams& params, const ProgressFn& progress = {});

// An error when `out_path` is `in_path` (the same name, or the same file under another name):
// quantizing would write over its own input. `input` says what in_path is, for the message.
Status check_output_is_not_input(const std::string& in_path, const std::string& out_path,
                                 std::string_view input = "input file");

// Opens `in_path` and quantizes it; refuses to write over the input.
Result<QuantizeReport> quantize_model(const std::string& in_path, const std::string& out_path,
                                      const QuantizeParams& params, const ProgressFn& progress = {});

// The recipe for a synthetic model (engine/synthetic.h), so that `bench --synthetic P --type T`
// makes what `hearth quantize` makes of an F16 model of that shape: the weights count as stored
// in F16 (1-D tensors and the MoE router in F32) before the recipe for file type T (any name
// parse_file_type takes) picks each tensor's type. `label` is the file type's canonical name in
// lower case ("q4_k" -> "q4_k_m"), for the cache's file name.
struct SyntheticRecipe {
  eval::TypeChooser choose;
  std::string label;
};
Result<SyntheticRecipe> synthetic_recipe(std::string_view file_type, const eval::SyntheticPreset& p);

}  // namespace hearth::quantize
