// The conversation REPL of `hearth chat MODEL` (and of `hearth run MODEL` on a terminal with no
// prompt): the model's own chat template, streamed replies, history kept within the context,
// and the commands /reset, /system TEXT, /load FILE, /save FILE, /help, /bye. Ctrl-C stops a
// reply without leaving; Ctrl-D (or /bye) leaves.
#pragma once

#include <string>
#include <vector>

#include "common_options.h"
#include "hearth/core/status.h"
#include "hearth/sampling/sampler_config.h"

namespace hearth::cli {

struct ChatOptions {
  ModelOptions m;
  std::string system;         // the first system message (empty: none)
  std::string chat_template;  // a built-in family's name; empty: the model's own template
  int n_predict = -1;         // per reply (-1: until the end of the turn or the context)
  bool ignore_eos = false;    // replies do not end at end-of-generation tokens
  sampling::SamplerConfig sampler;
  int64_t ctx = 0;
  int threads = 0;
  KvOptions kv;
  std::vector<std::string> lora;
};

// Runs the REPL on stdin/stdout until end of input or /bye.
Status run_chat_repl(const ChatOptions& o);

}  // namespace hearth::cli
