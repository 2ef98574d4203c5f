// Resolves the MODEL argument of run/serve/bench/perplexity: an explicit path, or else
// $HEARTH_MODEL, or else `default_model` in the config file ($HEARTH_CONFIG, default
// ~/.config/hearth/config.json). Store references are resolved (and verified) here once the
// store exists; a plain path is the operator's explicit local choice.
#pragma once

#include <string>

#include "hearth/core/status.h"

namespace hearth::cli {

struct ResolvedModelArg {
  std::string path;      // the GGUF file to map
  std::string display;   // what to call it in messages
  bool verified = false; // true when it came from the store through signature verification
};

Result<ResolvedModelArg> resolve_model_arg(const std::string& arg);

// Path of the config file.
std::string config_path();

}  // namespace hearth::cli
