// Provenance of what hearth builds (a quantized model, a LoRA adapter): an in-toto Statement v1
// whose predicate is SLSA Provenance v1, written next to the output as
// "<output>.provenance.json" so that the store can sign it. Subject: the output file (name,
// sha256). buildDefinition: buildType (kQuantizeBuildType, kFinetuneBuildType),
// externalParameters (the recipe or training options), resolvedDependencies (each input with
// its sha256 and role: the input model and imatrix of a quantization; the base model and the
// training data of an adapter). runDetails: builder id with the hearth version, start and
// finish times (RFC 3339, UTC).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::quantize {

inline constexpr std::string_view kInTotoStatementV1 = "https://in-toto.io/Statement/v1";
inline constexpr std::string_view kSlsaProvenanceV1 = "https://slsa.dev/provenance/v1";
inline constexpr std::string_view kQuantizeBuildType = "urn:hearth:build-type:quantize:v1";
inline constexpr std::string_view kFinetuneBuildType = "urn:hearth:build-type:finetune-lora:v1";
inline constexpr std::string_view kHearthBuilderId = "urn:hearth:builder:cli";

struct FileDigest {
  std::string name;    // file name (no directories)
  std::string sha256;  // lowercase hex
};

// One externalParameters entry, in the order given.
struct BuildParameter {
  std::string key;
  std::variant<std::string, int64_t, double, bool, std::vector<std::string>> value;
};

// One resolvedDependencies entry: a file digest and its role ("input-model", "imatrix",
// "base-model", "training-data").
struct BuildDependency {
  FileDigest file;
  std::string role;
};

// The generic statement; the quantize and finetune statements are built from it.
struct BuildProvenance {
  std::string_view build_type;
  FileDigest output;
  std::vector<BuildParameter> parameters;
  std::vector<BuildDependency> dependencies;
  std::string hearth_version;
  int64_t started_unix = 0;
  int64_t finished_unix = 0;
};

// The statement as pretty-printed JSON.
std::string build_provenance_json(const BuildProvenance& p);

struct QuantizeProvenance {
  FileDigest output;
  FileDigest input;
  std::optional<FileDigest> imatrix;
  std::string recipe;      // "Q4_K_M"
  uint32_t file_type = 0;  // general.file_type
  bool pure = false;
  bool allow_requantize = false;
  std::string output_tensor_type;    // empty: recipe default
  std::string token_embedding_type;  // empty: recipe default
  std::string hearth_version;
  int64_t started_unix = 0;
  int64_t finished_unix = 0;
};

// The statement as pretty-printed JSON.
std::string provenance_json(const QuantizeProvenance& p);

// "<output>.provenance.json"
std::string provenance_path_for(const std::string& output_path);

// Hashes the output and writes `p` (with its output digest filled in) atomically. Dependencies
// whose sha256 is empty are hashed from their `name` as a path, then named by its file name.
Status write_build_provenance(const std::string& statement_path, const std::string& output_path, BuildProvenance p);

// Hashes the files (output, input, optional imatrix) and writes the statement atomically.
// `p`'s digests and names are filled in from the paths; an input name or digest already set is
// kept (e.g. the store reference the input was resolved from, and its verified digest).
Status write_provenance(const std::string& statement_path, const std::string& output_path,
                        const std::string& input_path, const std::string& imatrix_path, QuantizeProvenance p);

}  // namespace hearth::quantize
