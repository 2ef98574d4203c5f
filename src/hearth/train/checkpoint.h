// Training checkpoints: one GGUF file holding the model as export_gguf writes it (so that a
// checkpoint also runs as a model), plus the AdamW moments (train.adam_m, train.adam_v), the
// options and the position of the run (step, data epoch, cursor and seed) under train.*.
// Written atomically (temp file, fsync, rename): a crash leaves the previous checkpoint.
// Resuming from it continues bit for bit as if the run had not stopped.
#pragma once

#include <string>

#include "hearth/core/status.h"
#include "hearth/tokenizer/vocab.h"
#include "hearth/train/trainer.h"

namespace hearth::train {

struct Checkpoint {
  TrainOptions options;
  tokenizer::VocabSpec vocab;
  TrainState state;
};

Status save_checkpoint(const std::string& path, const TrainOptions& opts, const LlamaParams& params,
                       const TrainState& state, const tokenizer::VocabSpec& vocab);

// Errors name the file and the missing or inconsistent part.
Result<Checkpoint> load_checkpoint(const std::string& path);

}  // namespace hearth::train
