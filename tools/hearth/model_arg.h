// Resolves the MODEL argument of run/serve/bench/perplexity/...: an explicit argument, or else
// $HEARTH_MODEL, or else `default_model` in the config file ($HEARTH_CONFIG, default
// ~/.config/hearth/config.json). The choice then goes through the trust layer's load seam
// (trust::resolve_model): a store reference is verified against the trust policy before it
// is loaded; a plain path is the operator's explicit local choice (refused when the policy
// says local_paths: deny). Every command loads models only through this function.
#pragma once

#include <string>
#include <string_view>

#include "hearth/core/status.h"

namespace hearth::cli {

struct ResolvedModelArg {
  std::string path;      // the GGUF file to map
  std::string display;   // what to call it in messages
  bool verified = false; // true when it came from the store through signature verification
  // Store models only (empty for a local path): the reference as resolved ("acme/stories:v1")
  // and the manifest digest that was verified ("sha256:...").
  std::string reference;
  std::string manifest_digest;
  bool is_signed = false;
};

// `purpose` is recorded in the audit log ("run", "serve", ...); allow_unsigned is
// --allow-unsigned (never excuses tampering or rollback).
Result<ResolvedModelArg> resolve_model_arg(const std::string& arg, std::string_view purpose = "load",
                                           bool allow_unsigned = false);

// Path of the config file.
std::string config_path();

}  // namespace hearth::cli
