// The chat REPL. Each turn renders the whole conversation with the model's template and decodes
// only what differs from the tokens already in the KV cache (the cache is indexed by position,
// so a shared prefix is reused as is). When the conversation outgrows the context, the oldest
// turns after the system message are dropped, with a note.
#include "chat_repl.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/engine/chat_template.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/sampling/sampler.h"
#include "hearth/sampling/stop_string_matcher.h"
#include "hearth/tokenizer/tokenizer.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

volatile sig_atomic_t g_interrupted = 0;

void on_sigint(int) { g_interrupted = 1; }

// Ctrl-C stops a reply instead of ending the process, for as long as the REPL runs.
class InterruptGuard {
 public:
  InterruptGuard() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // a read at the prompt goes on
    sigaction(SIGINT, &sa, &old_);
  }
  ~InterruptGuard() { sigaction(SIGINT, &old_, nullptr); }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_ {};
};

// The most messages /load takes, and the largest file.
constexpr size_t kMaxLoadedMessages = 10000;
constexpr uint64_t kMaxLoadBytes = 16u << 20;

Status save_messages(const std::string& path, const std::vector<engine::ChatMessage>& messages) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  return write_file_atomic(path, list.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
}

Result<std::vector<engine::ChatMessage>> load_messages(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(path, kMaxLoadBytes));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("messages")) j = j["messages"];
  if (!j.is_array()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected a JSON list of {{\"role\", \"content\"}} messages",
                      path);
  }
  if (j.size() > kMaxLoadedMessages) {
    return make_error(ErrorCode::kInvalidArgument, "{}: more than {} messages", path, kMaxLoadedMessages);
  }
  std::vector<engine::ChatMessage> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& m = j[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string()) {
      return make_error(ErrorCode::kInvalidArgument, "{}: message {} needs a string role and content", path, i);
    }
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant") {
      return make_error(ErrorCode::kInvalidArgument, "{}: message {} has role '{}' (system, user or assistant)", path,
                        i, role);
    }
    out.push_back({role, m["content"].get<std::string>()});
  }
  return out;
}

void print_help() {
  std::printf(
      "commands:\n"
      "  /reset          forget the conversation (keeps the system message)\n"
      "  /system TEXT    set the system message (and start over)\n"
      "  /save FILE      write the conversation as JSON\n"
      "  /load FILE      read a conversation written by /save (or an OpenAI messages list)\n"
      "  /bye            leave (also Ctrl-D); Ctrl-C stops a reply\n");
}

class Repl {
 public:
  Repl(const ChatOptions& o, model::Model& model, tokenizer::Tokenizer& tok, model::Context& ctx,
       engine::ChatFormat format)
      : o_(o), model_(model), tok_(tok), ctx_(ctx), format_(std::move(format)) {
    if (!o.system.empty()) messages_.push_back({"system", o.system});
  }

  Status run() {
    const bool tty = isatty(STDIN_FILENO);
    std::printf("chatting with %s (template: %s, context %lld tokens). /help for commands.\n",
                model_.path().c_str(), format_.name().c_str(), static_cast<long long>(ctx_.n_ctx()));
    std::string line;
    while (true) {
      std::printf(">>> ");
      std::fflush(stdout);
      g_interrupted = 0;
      if (!std::getline(std::cin, line)) {
        if (g_interrupted && !std::cin.eof()) {  // Ctrl-C at the prompt: a fresh prompt
          std::cin.clear();
          std::printf("\n");
          continue;
        }
        std::printf("\n");
        return ok_status();
      }
      if (!tty) std::printf("%s\n", line.c_str());  // piped input: show what was asked
      if (line.empty()) continue;
      if (line[0] == '/') {
        if (!command(line)) return ok_status();
        continue;
      }
      messages_.push_back({"user", line});
      Status s = reply();
      if (!s.ok()) {
        messages_.pop_back();
        std::printf("error: %s\n", s.message().c_str());
      }
    }
  }

 private:
  // A "/..." line; false to leave.
  bool command(const std::string& line) {
    const size_t space = line.find(' ');
    const std::string cmd = line.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
    if (cmd == "/bye" || cmd == "/exit" || cmd == "/quit") return false;
    if (cmd == "/help" || cmd == "/?") {
      print_help();
    } else if (cmd == "/reset" || cmd == "/clear") {
      std::erase_if(messages_, [](const engine::ChatMessage& m) { return m.role != "system"; });
      std::printf("(the conversation is cleared)\n");
    } else if (cmd == "/system") {
      messages_.clear();
      if (!arg.empty()) messages_.push_back({"system", arg});
      std::printf(arg.empty() ? "(no system message; the conversation is cleared)\n"
                              : "(system message set; the conversation is cleared)\n");
    } else if (cmd == "/save" && !arg.empty()) {
      Status s = save_messages(arg, messages_);
      if (s.ok()) {
        std::printf("(saved %zu messages to %s)\n", messages_.size(), arg.c_str());
      } else {
        std::printf("error: %s\n", s.message().c_str());
      }
    } else if (cmd == "/load" && !arg.empty()) {
      auto loaded = load_messages(arg);
      if (loaded.ok()) {
        messages_ = std::move(*loaded);
        std::printf("(loaded %zu messages from %s)\n", messages_.size(), arg.c_str());
      } else {
        std::printf("error: %s\n", loaded.status().message().c_str());
      }
    } else {
      std::printf("unknown command '%s' (/help lists them)\n", line.c_str());
    }
    std::fflush(stdout);
    return true;
  }

  // Renders and tokenizes the conversation; drops the oldest turns while it leaves less than a
  // quarter of the context for the reply.
  Result<engine::RenderedChat> fit(std::vector<int32_t>& ids) {
    const int64_t room = std::max<int64_t>(ctx_.n_ctx() / 4, 16);
    while (true) {
      HEARTH_ASSIGN_OR_RETURN(engine::RenderedChat r,
                              format_.render(messages_, tok_.token_text(tok_.bos()), tok_.token_text(tok_.eos())));
      ids = tok_.encode(r.prompt, r.add_bos, /*parse_special=*/true);
      if (static_cast<int64_t>(ids.size()) + room <= ctx_.n_ctx()) return r;
      // The first non-system message goes (with its reply, if any); the last user turn stays.
      auto first = std::find_if(messages_.begin(), messages_.end(),
                                [](const engine::ChatMessage& m) { return m.role != "system"; });
      if (first == messages_.end() || first + 1 == messages_.end()) {
        return make_error(ErrorCode::kOutOfRange,
                          "the message has {} tokens with the template: it does not fit the context of {} (raise -c)",
                          ids.size(), ctx_.n_ctx());
      }
      messages_.erase(first);
      std::printf("(dropped the oldest message to fit the context)\n");
    }
  }

  Status reply() {
    std::vector<int32_t> ids;
    HEARTH_ASSIGN_OR_RETURN(engine::RenderedChat rendered, fit(ids));
    // Decode only from the first token that differs from what the cache holds.
    size_t keep = 0;
    while (keep < ids.size() && keep < cached_.size() && ids[keep] == cached_[keep]) ++keep;
    if (keep == ids.size()) --keep;  // the last prompt token is decoded again for its logits
    keep = static_cast<size_t>(ctx_.reusable_prefix(0, static_cast<int64_t>(keep)));  // a sliding window's ring
    std::vector<model::BatchToken> batch;
    for (size_t i = keep; i < ids.size(); ++i) {
      batch.push_back({ids[i], static_cast<int32_t>(i), 0, i + 1 == ids.size()});
    }
    cached_.resize(keep);
    HEARTH_TRY(ctx_.decode(batch));
    cached_.insert(cached_.end(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end());

    sampling::SamplerConfig sc = o_.sampler;
    for (int32_t id = 0; id < tok_.n_vocab() && !o_.ignore_eos; ++id) {
      if (tok_.is_eog(id)) sc.eog_tokens.push_back(id);
    }
    HEARTH_ASSIGN_OR_RETURN(auto sampler, sampling::Sampler::create(sc, static_cast<int32_t>(tok_.n_vocab())));
    for (int32_t id : ids) HEARTH_TRY(sampler.accept(id));
    sampling::StopStringMatcher stops(rendered.stop_strings);
    std::string text;
    int32_t pos = static_cast<int32_t>(ids.size());
    const int64_t left = ctx_.n_ctx() - pos;
    const int64_t limit = o_.n_predict < 0 ? left : std::min<int64_t>(o_.n_predict, left);
    bool interrupted = false;
    for (int64_t n = 0; n < limit; ++n) {
      if (g_interrupted) {
        interrupted = true;
        break;
      }
      HEARTH_ASSIGN_OR_RETURN(int32_t next, sampler.sample(ctx_.logits(ctx_.n_outputs() - 1)));
      if (sampler.is_eog(next)) break;
      HEARTH_TRY(sampler.accept(next));
      auto step = stops.push(tok_.token_to_piece(next));
      text += step.text;
      std::fwrite(step.text.data(), 1, step.text.size(), stdout);
      std::fflush(stdout);
      if (step.stopped) break;
      model::BatchToken t{next, pos++, 0, true};
      HEARTH_TRY(ctx_.decode({&t, 1}));
      cached_.push_back(next);
    }
    if (!stops.stopped()) {
      std::string rest = stops.finish();
      text += rest;
      std::fwrite(rest.data(), 1, rest.size(), stdout);
    }
    std::printf(interrupted ? "\n(stopped)\n" : "\n");
    std::fflush(stdout);
    g_interrupted = 0;
    messages_.push_back({"assistant", text});
    return ok_status();
  }

  const ChatOptions& o_;
  model::Model& model_;
  tokenizer::Tokenizer& tok_;
  model::Context& ctx_;
  engine::ChatFormat format_;
  std::vector<engine::ChatMessage> messages_;
  std::vector<int32_t> cached_;  // the tokens whose K/V the cache holds at positions 0..
};

}  // namespace

Status run_chat_repl(const ChatOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(o.m.model, "chat", o.m.allow_unsigned));
  HEARTH_ASSIGN_OR_RETURN(GenerationSetup g,
                          load_for_generation(arg, o.lora, o.m.allow_unsigned, o.ctx, o.threads, o.kv));
  std::string warning;
  HEARTH_ASSIGN_OR_RETURN(engine::ChatFormat format, engine::ChatFormat::for_gguf(g.model->gguf(), o.chat_template, &warning));
  if (!warning.empty()) std::fprintf(stderr, "warning: %s\n", warning.c_str());
  InterruptGuard guard;
  Repl repl(o, *g.model, *g.tok, *g.ctx, std::move(format));
  return repl.run();
}

}  // namespace hearth::cli
