// Resolves the MODEL argument of run/serve/bench/perplexity/...: an explicit argument, or else
// $HEARTH_MODEL, or else `default_model` in the config file ($HEARTH_CONFIG, default
// ~/.config/hearth/config.json). The choice then goes through the trust layer's load seam
// (trust::resolve_model): a store reference is verified against the trust policy before it
// is loaded, and its weights are hashed through the mapping that the engine then uses; a
// plain path is the operator's explicit local choice (refused when the policy says
// local_paths: deny). Every command loads models only through this file: load_model() for
// the engine, open_gguf() for metadata, and each load is written to the audit log after it
// succeeded or failed.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "hearth/core/mapped_file.h"
#include "hearth/core/status.h"
#include "hearth/gguf/gguf.h"
#include "hearth/model/model.h"
#include "hearth/onnx/session.h"

namespace hearth::cli {

struct ResolvedModelArg {
  std::string path;       // the GGUF file (a store blob's path is for messages only)
  std::string display;    // what to call it in messages
  bool verified = false;  // true when it came from the store through signature verification
  // Store models only (empty for a local path): the reference as resolved ("acme/stories:v1")
  // and the manifest digest that was verified ("sha256:...").
  std::string reference;
  std::string manifest_digest;
  std::string weights_digest;  // of the verified weights blob ("sha256:...")
  bool is_signed = false;
  std::string publisher_key_id;
  // Store models: the verified mapping of the weights; null for a local path.
  std::shared_ptr<const MappedFile> mapping;
  std::string purpose;  // for the audit log
};

// The model a command would use: `arg`, else $HEARTH_MODEL, else the config's default_model;
// empty when none is given anywhere.
Result<std::string> chosen_model_arg(const std::string& arg);

// `purpose` is recorded in the audit log ("run", "serve", ...); allow_unsigned is
// --allow-unsigned (never excuses tampering or rollback).
Result<ResolvedModelArg> resolve_model_arg(const std::string& arg, std::string_view purpose = "load",
                                           bool allow_unsigned = false);

// The bytes to use: the verified mapping of a store model, or a fresh mapping of a local file.
Result<std::shared_ptr<const MappedFile>> map_model(const ResolvedModelArg& arg);

// Loads the model into the engine from map_model(arg), then records the outcome. `options`
// carries the command's -t (the threads that repack the weights).
Result<std::unique_ptr<model::Model>> load_model(const ResolvedModelArg& arg, const model::LoadOptions& options = {});

// A parsed GGUF over map_model(arg) (inspect, tokenize); the outcome is recorded.
struct MappedGguf {
  std::shared_ptr<const MappedFile> map;  // outlives `file`, whose views point into it
  gguf::GgufFile file;
};
Result<std::unique_ptr<MappedGguf>> open_gguf(const ResolvedModelArg& arg);

// Writes the outcome of loading `arg` to the audit log: "<purpose> ok" after a load that
// succeeded, "<purpose> <error code>" with the error after one that failed.
void record_load(const ResolvedModelArg& arg, const Status& outcome);

// An ONNX model named by a file or a store reference (`arg` must not be empty: ONNX commands
// have their own defaults, never HEARTH_MODEL). A reference is verified against the trust
// policy and parsed from the very bytes that were hashed; a path obeys local_paths and may keep
// its external data beside it. The load is recorded in the audit log either way.
Result<onnx::Session> open_onnx_model(const std::string& arg, std::string_view purpose, bool allow_unsigned,
                                      const onnx::SessionOptions& options);

// Path of the config file.
std::string config_path();

}  // namespace hearth::cli
