// `hearth chat MODEL`: a conversation in the terminal (see chat_repl.h).
#include "chat_repl.h"
#include "command.h"

namespace hearth::cli {
namespace {

void setup(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  auto* sub = app.add_subcommand("chat", "talk with a model in the terminal (its chat template, streamed)");
  add_model_options(sub, o->m);
  sub->add_option("--system", o->system, "the system message");
  sub->add_option("--chat-template", o->chat_template,
                  "a built-in format instead of the model's template: plain, llama2, llama3, chatml, mistral, "
                  "zephyr, gemma, phi3");
  sub->add_option("-n,--n-predict", o->n_predict, "most tokens per reply (-1: until the turn ends)");
  sub->add_option("--temp", o->sampler.temperature, "temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", o->sampler.top_k, "top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", o->sampler.top_p, "top-p (1: off)")->capture_default_str();
  sub->add_option("--min-p", o->sampler.min_p, "min-p (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", o->sampler.repeat_penalty, "repetition penalty (1: off)")->capture_default_str();
  sub->add_flag("--ignore-eos", o->ignore_eos, "do not end replies at end-of-generation tokens");
  sub->add_option("-s,--seed", o->sampler.seed, "random seed (default: random)");
  add_ctx_option(sub, o->ctx, "context size (default: min(4096, the model's))");
  add_threads_option(sub, o->threads);
  add_kv_options(sub, o->kv);
  add_lora_option(sub, o->lora);
  sub->callback([o] {
    Status s = run_chat_repl(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(11, setup);

}  // namespace
}  // namespace hearth::cli
