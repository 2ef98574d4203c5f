// The model-backed routes: /v1/chat/completions, /v1/completions (streamed as server-sent
// events or not), /v1/embeddings, /tokenize, /detokenize. (/lora-adapters: lora_handlers.cpp)
#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <variant>

#include "hearth/core/base64.h"
#include "hearth/core/log.h"
#include "hearth/sampling/sampler_config.h"
#include "hearth/server/serving.h"
#include "hearth/server/tool_calls.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using engine::FinishReason;
using engine::GenerationEvent;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string random_id(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  char buf[25];
  std::snprintf(buf, sizeof buf, "%016llx%08x", static_cast<unsigned long long>(rng()), static_cast<unsigned>(rng()));
  return std::string(prefix) + buf;
}

// Logprobs are finite in JSON; OpenAI reports -9999 for tokens with no probability.
double finite_logprob(float lp) { return std::isfinite(lp) ? static_cast<double>(lp) : -9999.0; }

json bytes_of(const std::string& s) {
  json a = json::array();
  for (unsigned char c : s) a.push_back(static_cast<int>(c));
  return a;
}

json chat_logprobs(const std::vector<engine::TokenInfo>& tokens) {
  json content = json::array();
  for (const auto& t : tokens) {
    json top = json::array();
    for (const auto& [piece, lp] : t.top) {
      top.push_back({{"token", sanitize_utf8(piece)}, {"logprob", finite_logprob(lp)}, {"bytes", bytes_of(piece)}});
    }
    content.push_back({{"token", sanitize_utf8(t.piece)},
                       {"logprob", finite_logprob(t.logprob)},
                       {"bytes", bytes_of(t.piece)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json completion_logprobs(const std::vector<engine::TokenInfo>& tokens, size_t text_offset) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  for (const auto& t : tokens) {
    toks.push_back(sanitize_utf8(t.piece));
    lps.push_back(finite_logprob(t.logprob));
    json top = json::object();
    for (const auto& [piece, lp] : t.top) top[sanitize_utf8(piece)] = finite_logprob(lp);
    tops.push_back(top);
    offs.push_back(text_offset);
    text_offset += t.piece.size();
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

const char* finish_name(FinishReason r) { return r == FinishReason::kLength ? "length" : "stop"; }

// The OpenAI form of a reply's calls; a stream's deltas also carry each call's index.
json tool_calls_json(const std::vector<ToolCall>& calls, bool indexed) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c = {{"id", random_id("call_")},
              {"type", "function"},
              {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (indexed) c["index"] = i;
    out.push_back(std::move(c));
  }
  return out;
}

// The embedding's floats as little-endian bytes, base64-encoded (encoding_format: base64).
std::string base64_floats(const std::vector<float>& v) {
  std::string bytes(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + static_cast<size_t>(b)] = static_cast<char>((u >> (8 * b)) & 0xFF);
  }
  return base64_encode(bytes);
}

// What one request is generating, shared by the handler and (when streaming) its body writer.
struct Generation {
  Serving* sv = nullptr;
  std::shared_ptr<Serving> keep_serving;  // keeps a swapped-out model alive until the stream ends
  int key = -1;
  bool chat = false;
  bool logprobs = false;
  bool include_usage = false;
  std::string id;
  int64_t created = 0;
  int n = 1;
  std::shared_ptr<engine::RequestChannel> channel;
  Clock::time_point start;
  struct Choice {
    std::string text;
    std::vector<engine::TokenInfo> tokens;
    FinishReason finish = FinishReason::kStop;
    bool done = false;
  };
  std::vector<Choice> choices;
  // Tool calling (chat with tools and tool_choice other than none): each choice's reply goes
  // through a ToolCallStream; `forced_prefix` is the call opener a forced call's prompt ended with.
  bool tools = false;
  engine::ToolCallSyntax tool_syntax = engine::ToolCallSyntax::kJson;
  std::string forced_prefix;
  std::vector<ToolCallStream> tool_streams;
  int64_t n_prompt = 0, n_cached = 0, n_generated = 0;
  int dropped_messages = 0;  // by the context shift
  int n_done = 0;
  bool got_first = false;
  Status error;
  TokenReservation quota;  // settled with the tokens used when the generation ends

  // Applies an event; returns false when it carried an error.
  bool apply(const GenerationEvent& e) {
    Choice& c = choices[static_cast<size_t>(e.index)];
    if (e.kind == GenerationEvent::Kind::kDelta) {
      if (!got_first) {
        got_first = true;
        const double ttft = std::chrono::duration<double>(Clock::now() - start).count();
        current_request_stats().ttft_s = ttft;
        sv->metrics->record_ttft(ttft);
      }
      return true;
    }
    if (e.kind == GenerationEvent::Kind::kFinish && !c.done) {
      c.done = true;
      c.finish = e.finish;
      ++n_done;
      n_prompt = e.n_prompt;
      n_cached = std::max(n_cached, e.n_cached);
      n_generated += e.n_generated;
      if (e.finish == FinishReason::kError || e.finish == FinishReason::kCancelled) {
        if (error.ok()) error = e.error.ok() ? make_error(ErrorCode::kInternal, "generation was cancelled") : e.error;
        return false;
      }
    }
    return true;
  }

  void account() {
    RequestStats& st = current_request_stats();
    st.prompt_tokens = n_prompt;
    st.completion_tokens = n_generated;
    sv->metrics->record_tokens(n_prompt, n_generated);
    quota.settle(n_prompt + n_generated);
  }

  json usage() const {
    json u = {{"prompt_tokens", n_prompt},
              {"completion_tokens", n_generated},
              {"total_tokens", n_prompt + n_generated},
              {"prompt_tokens_details", {{"cached_tokens", n_cached}}}};
    if (dropped_messages > 0) u["context_shift"] = {{"dropped_messages", dropped_messages}};
    return u;
  }

  json chunk_base() const {
    json j = {{"id", id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created},
              {"model", sv->model_id},
              {"system_fingerprint", "hearth"}};
    if (include_usage) j["usage"] = nullptr;
    return j;
  }
};

// The non-streamed response. While it waits, the connection is polled: a client that hung up
// cancels the generation (its slots are freed at the scheduler's next step), and the request
// ends with 499 (nobody reads it; the access log and metrics record it).
HttpResponse collect(std::shared_ptr<Generation> g, const HttpRequest& req) {
  std::vector<GenerationEvent> events;
  bool client_gone = false;
  while (g->n_done < g->n) {
    events.clear();
    if (!client_gone && req.is_connection_closed()) {
      client_gone = true;
      g->channel->cancel();
    }
    g->channel->wait(events, std::chrono::milliseconds(100));
    for (const GenerationEvent& e : events) {
      g->apply(e);
      if (e.kind == GenerationEvent::Kind::kDelta) {
        auto& c = g->choices[static_cast<size_t>(e.index)];
        c.text += e.text;
        c.tokens.insert(c.tokens.end(), e.tokens.begin(), e.tokens.end());
      }
    }
  }
  g->account();
  if (client_gone) {
    return error_response(ApiError{499,
                                   "the client closed the connection before the response was ready",
                                   "invalid_request_error",
                                   "",
                                   "client_closed_request",
                                   {}});
  }
  if (!g->error.ok()) return error_response(api_error_from_status(g->error));
  json choices = json::array();
  for (size_t i = 0; i < g->choices.size(); ++i) {
    const auto& c = g->choices[i];
    json ch = {{"index", i}, {"finish_reason", finish_name(c.finish)}};
    if (g->chat && g->tools) {
      ParsedReply reply = parse_tool_calls(g->forced_prefix + c.text, g->tool_syntax);
      if (reply.calls.empty()) reply.content = c.text;
      ch["message"] = {{"role", "assistant"},
                       {"content", reply.calls.empty() || !reply.content.empty() ? json(reply.content) : json(nullptr)},
                       {"refusal", nullptr}};
      if (!reply.calls.empty()) {
        ch["message"]["tool_calls"] = tool_calls_json(reply.calls, false);
        if (c.finish == FinishReason::kStop) ch["finish_reason"] = "tool_calls";
      }
      ch["logprobs"] = g->logprobs ? chat_logprobs(c.tokens) : json(nullptr);
    } else if (g->chat) {
      ch["message"] = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
      ch["logprobs"] = g->logprobs ? chat_logprobs(c.tokens) : json(nullptr);
    } else {
      ch["text"] = c.text;
      ch["logprobs"] = g->logprobs ? completion_logprobs(c.tokens, 0) : json(nullptr);
    }
    choices.push_back(std::move(ch));
  }
  json j = {{"id", g->id},
            {"object", g->chat ? "chat.completion" : "text_completion"},
            {"created", g->created},
            {"model", g->sv->model_id},
            {"system_fingerprint", "hearth"},
            {"choices", choices},
            {"usage", g->usage()}};
  if (g->sv->log_prompts) {
    for (const auto& c : g->choices) log::info("completion {}: {}", g->id, c.text);
  }
  return json_text_response(dump(j));
}

void stream_events(const std::shared_ptr<Generation>& g, StreamWriter& w) {
  auto send = [&](const json& j) { return w.write("data: " + dump(j) + "\n\n"); };
  bool ok = true;
  if (g->chat) {
    for (int i = 0; i < g->n && ok; ++i) {
      json c = g->chunk_base();
      c["choices"] = json::array({{{"index", i},
                                   {"delta", {{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}}},
                                   {"logprobs", nullptr},
                                   {"finish_reason", nullptr}}});
      ok = send(c);
    }
  }
  std::vector<size_t> offsets(static_cast<size_t>(g->n), 0);
  std::vector<GenerationEvent> events;
  while (ok && g->n_done < g->n) {
    events.clear();
    g->channel->wait(events, std::chrono::milliseconds(200));
    for (const GenerationEvent& e : events) {
      if (!ok) break;
      if (!g->apply(e)) {
        ApiError err = api_error_from_status(g->error);
        ok = w.write("data: " + error_body(err) + "\n\n");
        ok = false;
        break;
      }
      json c = g->chunk_base();
      json choice = {{"index", e.index}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
      if (e.kind == GenerationEvent::Kind::kDelta) {
        std::string text = e.text;
        if (g->tools) text = g->tool_streams[static_cast<size_t>(e.index)].feed(e.text);
        if (text.empty() && (e.tokens.empty() || !g->logprobs)) continue;
        if (g->chat) {
          choice["delta"] = {{"content", text}};
          if (g->logprobs) choice["logprobs"] = chat_logprobs(e.tokens);
        } else {
          choice["text"] = e.text;
          if (g->logprobs) choice["logprobs"] = completion_logprobs(e.tokens, offsets[static_cast<size_t>(e.index)]);
        }
        offsets[static_cast<size_t>(e.index)] += e.text.size();
      } else if (e.kind == GenerationEvent::Kind::kFinish) {
        if (g->chat) {
          choice["delta"] = json::object();
        } else {
          choice["text"] = "";
        }
        choice["finish_reason"] = finish_name(e.finish);
        if (g->tools) {
          // The held-back rest of the reply: content, then the calls, then the finish.
          ParsedReply reply = g->tool_streams[static_cast<size_t>(e.index)].finish();
          if (!reply.content.empty()) {
            json c2 = g->chunk_base();
            c2["choices"] = json::array({{{"index", e.index},
                                          {"delta", {{"content", reply.content}}},
                                          {"logprobs", nullptr},
                                          {"finish_reason", nullptr}}});
            ok = send(c2);
          }
          if (ok && !reply.calls.empty()) {
            json c2 = g->chunk_base();
            c2["choices"] = json::array({{{"index", e.index},
                                          {"delta", {{"tool_calls", tool_calls_json(reply.calls, true)}}},
                                          {"logprobs", nullptr},
                                          {"finish_reason", nullptr}}});
            ok = send(c2);
            if (e.finish == FinishReason::kStop) choice["finish_reason"] = "tool_calls";
          }
          if (!ok) break;
        }
      } else {
        continue;
      }
      c["choices"] = json::array({choice});
      ok = send(c);
    }
  }
  if (!ok) {
    g->channel->cancel();  // the client is gone (or an error was sent): free the slots now
    // Drain until the scheduler confirms, so the token counts are final.
    while (g->n_done < g->n) {
      events.clear();
      g->channel->wait(events, std::chrono::milliseconds(200));
      for (const GenerationEvent& e : events) g->apply(e);
    }
    g->account();
    return;
  }
  g->account();
  if (g->include_usage) {
    json c = g->chunk_base();
    c["choices"] = json::array();
    c["usage"] = g->usage();
    if (!send(c)) return;
  }
  w.write("data: [DONE]\n\n");
}

}  // namespace

RequestStats& current_request_stats() {
  thread_local RequestStats stats;
  return stats;
}

HttpResponse json_text_response(std::string body, int status) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse error_response(const ApiError& e) {
  HttpResponse r;
  r.status = e.status;
  r.body = error_body(e);
  r.headers = e.headers;
  return r;
}

namespace {

// The room a chat's prompt must leave for the reply: max_tokens (at most half the context), or
// a quarter of the context when the request sets none.
int64_t reply_room(int64_t max_tokens, int64_t n_ctx) {
  return std::max<int64_t>(1, max_tokens > 0 ? std::min(max_tokens, n_ctx / 2) : n_ctx / 4);
}

// Drops the oldest message after the system messages, with the tool results that follow it
// (a result without its call would confuse the template). The last message always stays.
bool drop_oldest_turn(std::vector<engine::ChatMessage>& messages) {
  size_t i = 0;
  while (i < messages.size() && messages[i].role == "system") ++i;
  if (i + 1 >= messages.size()) return false;
  messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(i));
  while (i + 1 < messages.size() && messages[i].role == "tool") {
    messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return true;
}

std::optional<ApiError> check_model(const Serving& sv, const std::string& model, int key) {
  if (!model.empty() && model != sv.model_id && model != sv.model_id + ":latest") {
    return ApiError{404,
                    "the model '" + model + "' does not exist on this server (GET /v1/models lists its models)",
                    "invalid_request_error",
                    "model",
                    "model_not_found",
                    {}};
  }
  if (key >= 0 && sv.auth && !sv.auth->model_allowed(key, sv.model_id)) {
    return ApiError{404,
                    "the model '" + sv.model_id + "' does not exist or your key has no access to it",
                    "invalid_request_error",
                    "model",
                    "model_not_found",
                    {}};
  }
  return std::nullopt;
}

// The caller's key for routes whose signature has none (tokenize, detokenize): the HTTP layer
// already refused a missing or bad key, so this only finds which one it was.
int caller_key(const Serving& sv, const HttpRequest& req) {
  if (sv.auth == nullptr || !sv.auth->enabled()) return -1;
  return sv.auth->authenticate(req.header("authorization"), req.header("x-api-key"));
}

ApiError quota_error(const Serving& sv, int key, const Auth::TokenGrant& g, int64_t needed) {
  const ApiKey& k = sv.auth->key(key);
  if (g.retry_after < 0) {
    return ApiError{429,
                    fmt::format("this request needs at least {} tokens (the prompt and one per choice), more than the "
                                "{} tokens per minute allowed for {}",
                                needed, k.tpm, k.label),
                    "rate_limit_error",
                    "",
                    "tokens_exceed_quota",
                    {}};
  }
  ApiError e{
      429,
      fmt::format("token rate limit reached for {} ({} per minute); retry in {} s", k.label, k.tpm, g.retry_after),
      "rate_limit_error",
      "",
      "rate_limit_exceeded",
      {}};
  e.headers.emplace_back("Retry-After", std::to_string(g.retry_after));
  return e;
}

// Reserves the request's tokens against its key's tpm before anything is generated: the prompt
// plus max_tokens per choice. When the window has less left, the completion is cut to what is
// left (finish_reason "length"); when not even the prompt and one token per choice fit, 429.
std::variant<TokenReservation, ApiError> reserve_completion(const Serving& sv, int key, engine::GenerationParams& p) {
  const int64_t n_prompt = static_cast<int64_t>(p.prompt.size());
  const int64_t n = p.n_choices;
  const int64_t ctx_left = std::max<int64_t>(sv.scheduler->n_ctx() - n_prompt, 1);
  const int64_t per_choice = p.max_tokens >= 0 ? std::min(p.max_tokens, ctx_left) : ctx_left;
  const Auth::TokenGrant g = sv.auth->reserve_tokens(key, n_prompt + n, n_prompt + per_choice * n);
  if (g.tokens <= 0) return quota_error(sv, key, g, n_prompt + n);
  const int64_t granted = (g.tokens - n_prompt) / n;
  if (granted < per_choice) p.max_tokens = granted;
  return TokenReservation(sv.auth, key, g.tokens);
}

}  // namespace

HttpResponse handle_completion(Serving& sv, const HttpRequest& req, bool chat, int key) {
  const auto start = Clock::now();
  auto parsed = parse_completion_request(req.body, chat, sv.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
  CompletionRequest& r = std::get<CompletionRequest>(parsed);
  if (auto e = check_model(sv, r.model, key)) return error_response(*e);

  auto params = std::make_shared<engine::GenerationParams>(std::move(r.gen));
  const tokenizer::Tokenizer& tok = *sv.tokenizer;
  const bool tools = chat && r.tool_choice != ToolChoice::kNone;
  std::string forced_prefix;
  int dropped_messages = 0;
  if (chat) {
    engine::ChatRenderOptions options;
    if (tools) options.tools_json = r.tools_json;
    std::optional<ForcedToolCall> forced;
    if (r.tool_choice == ToolChoice::kRequired || r.tool_choice == ToolChoice::kNamed) {
      // A forced call: the prompt ends with the syntax's opener and the reply is the call's JSON.
      if (params->json_schema) {
        return error_response(bad_request("'response_format' cannot be combined with a tool_choice that forces a call",
                                          "response_format"));
      }
      forced = forced_tool_call(r, sv.chat_format.tool_call_syntax());
      std::vector<std::string> skipped;
      auto schema = parse_json_schema(forced->schema_json, /*best_effort=*/true, &skipped);
      if (auto* e = std::get_if<ApiError>(&schema)) {
        e->param = "tools";
        return error_response(*e);
      }
      if (!skipped.empty()) r.skipped_schema_keywords.insert(r.skipped_schema_keywords.end(), skipped.begin(), skipped.end());
      params->json_schema = std::make_shared<engine::JsonSchema>(std::get<engine::JsonSchema>(std::move(schema)));
      forced_prefix = forced->prompt_suffix;
    }
    // Context shift: while the prompt leaves too little room for the reply, the oldest turns
    // after the system messages go (the usage says how many).
    const int64_t room = reply_room(params->max_tokens, sv.scheduler->n_ctx());
    engine::RenderedChat rendered;
    while (true) {
      auto got = sv.chat_format.render(r.messages, tok.token_text(tok.bos()), tok.token_text(tok.eos()), options);
      if (!got.ok()) return error_response(bad_request(got.status().message(), "messages"));
      rendered = std::move(*got);
      rendered.prompt += forced_prefix;
      params->prompt = tok.encode(rendered.prompt, /*add_special=*/rendered.add_bos, /*parse_special=*/true);
      if (static_cast<int64_t>(params->prompt.size()) + room <= sv.scheduler->n_ctx()) break;
      if (!drop_oldest_turn(r.messages)) break;  // what is left is refused by the scheduler if it does not fit
      ++dropped_messages;
    }
    if (dropped_messages > 0) {
      log::info("context shift: dropped the {} oldest messages to fit the context of {} tokens", dropped_messages,
                sv.scheduler->n_ctx());
    }
    for (const auto& s : rendered.stop_strings) params->stop.push_back(s);
    if (sv.log_prompts) log::info("prompt: {}", rendered.prompt);
  } else if (r.prompt_is_tokens) {
    params->prompt = std::move(r.prompt_tokens);
  } else {
    params->prompt = tok.encode(r.prompt, /*add_special=*/true, /*parse_special=*/false);
    if (sv.log_prompts) log::info("prompt: {}", r.prompt);
  }
  if (!r.skipped_schema_keywords.empty()) {
    std::string list;
    for (const auto& k : r.skipped_schema_keywords) list += (list.empty() ? "" : ", ") + k;
    log::info("json schema: best effort, not enforcing: {}", list);
  }
  // A logit_bias that bans the whole vocabulary (or names ids outside it) is the caller's error,
  // found here rather than as a 500 from the sampler.
  if (Status st = sampling::validate(params->sampler, tok.n_vocab()); !st.ok()) {
    return error_response(bad_request(st.message(), "logit_bias"));
  }
  auto lora = lora_for_request(sv, r.lora);
  if (auto* e = std::get_if<ApiError>(&lora)) return error_response(*e);
  TokenReservation quota;
  if (sv.auth != nullptr && key >= 0) {
    auto reserved = reserve_completion(sv, key, *params);
    if (auto* e = std::get_if<ApiError>(&reserved)) return error_response(*e);
    quota = std::get<TokenReservation>(std::move(reserved));
  }
  auto channel = sv.scheduler->submit(params, std::move(std::get<std::vector<model::LoraUse>>(lora)));
  if (!channel.ok()) {
    quota.settle(0);
    ApiError e = api_error_from_status(channel.status());
    if (e.status == 400) e.param = chat ? "messages" : "prompt";
    return error_response(e);
  }
  auto g = std::make_shared<Generation>();
  g->sv = &sv;
  g->keep_serving = sv.weak_from_this().lock();
  g->key = key;
  g->chat = chat;
  g->logprobs = r.logprobs;
  g->include_usage = r.include_usage;
  g->id = random_id(chat ? "chatcmpl-" : "cmpl-");
  g->created = static_cast<int64_t>(std::time(nullptr));
  g->n = params->n_choices;
  g->channel = std::move(channel).value();
  g->start = start;
  g->choices.resize(static_cast<size_t>(g->n));
  g->quota = std::move(quota);
  g->dropped_messages = dropped_messages;
  if (tools) {
    g->tools = true;
    g->tool_syntax = sv.chat_format.tool_call_syntax();
    g->forced_prefix = forced_prefix;
    g->tool_streams.assign(static_cast<size_t>(g->n), ToolCallStream(g->tool_syntax, forced_prefix));
  }
  if (!r.stream) return collect(g, req);
  HttpResponse resp;
  resp.content_type = "text/event-stream";
  resp.headers.emplace_back("Cache-Control", "no-cache");
  resp.stream = [g](StreamWriter& w) { stream_events(g, w); };
  return resp;
}

HttpResponse handle_embeddings(Serving& sv, const HttpRequest& req, int key) {
  auto parsed = parse_embedding_request(req.body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
  EmbeddingRequest& r = std::get<EmbeddingRequest>(parsed);
  if (auto e = check_model(sv, r.model, key)) return error_response(*e);
  std::vector<std::vector<int32_t>> inputs = std::move(r.token_inputs);
  for (const auto& t : r.texts)
    inputs.push_back(sv.tokenizer->encode(t, /*add_special=*/true, /*parse_special=*/false));
  // Each input is one scheduler task; the batch is queued whole or not at all, so its limit is
  // the scheduler's (--parallel + --max-queue) as well as kMaxEmbeddingInputs.
  if (inputs.size() > sv.scheduler->max_tasks()) {
    return error_response(
        bad_request(fmt::format("'input' has {} items; this server takes at most {} per request (--parallel + "
                                "--max-queue)",
                                inputs.size(), sv.scheduler->max_tasks()),
                    "input"));
  }
  std::vector<std::shared_ptr<const engine::GenerationParams>> requests;
  int64_t n_input_tokens = 0;
  for (auto& ids : inputs) {
    auto p = std::make_shared<engine::GenerationParams>();
    n_input_tokens += static_cast<int64_t>(ids.size());
    p->prompt = std::move(ids);
    p->embedding = true;
    requests.push_back(std::move(p));
  }
  TokenReservation quota;
  if (sv.auth != nullptr && key >= 0) {
    const Auth::TokenGrant g = sv.auth->reserve_tokens(key, n_input_tokens, n_input_tokens);
    if (g.tokens <= 0) return error_response(quota_error(sv, key, g, n_input_tokens));
    quota = TokenReservation(sv.auth, key, g.tokens);
  }
  // Embeddings run with the global adapter scales.
  auto lora = lora_for_request(sv, std::nullopt);
  if (auto* e = std::get_if<ApiError>(&lora)) return error_response(*e);
  auto submitted =
      sv.scheduler->submit_all(std::move(requests), std::move(std::get<std::vector<model::LoraUse>>(lora)));
  if (!submitted.ok()) {
    quota.settle(0);
    ApiError e = api_error_from_status(submitted.status());
    if (e.status == 400) e.param = "input";
    return error_response(e);
  }
  std::vector<std::shared_ptr<engine::RequestChannel>> channels = std::move(submitted).value();
  json data = json::array();
  int64_t n_prompt = 0;
  std::vector<GenerationEvent> events;
  for (size_t i = 0; i < channels.size(); ++i) {
    std::vector<float> embedding;
    bool done = false;
    Status err;
    while (!done) {
      events.clear();
      channels[i]->wait(events, std::chrono::milliseconds(200));
      for (const auto& e : events) {
        if (e.kind == GenerationEvent::Kind::kEmbedding) {
          embedding = e.embedding;
          n_prompt += e.n_prompt;
          done = true;
        } else if (e.kind == GenerationEvent::Kind::kFinish) {
          err = e.error.ok() ? make_error(ErrorCode::kInternal, "embedding was cancelled") : e.error;
          done = true;
        }
      }
    }
    if (!err.ok()) {
      for (auto& c : channels) c->cancel();
      return error_response(api_error_from_status(err));
    }
    json item = {{"object", "embedding"}, {"index", i}};
    if (r.base64) {
      item["embedding"] = base64_floats(embedding);
    } else {
      item["embedding"] = embedding;
    }
    data.push_back(std::move(item));
  }
  current_request_stats().prompt_tokens = n_prompt;
  sv.metrics->record_tokens(n_prompt, 0);
  quota.settle(n_prompt);
  json j = {{"object", "list"},
            {"data", data},
            {"model", sv.model_id},
            {"usage", {{"prompt_tokens", n_prompt}, {"total_tokens", n_prompt}}}};
  return json_text_response(dump(j));
}

HttpResponse handle_tokenize(Serving& sv, const HttpRequest& req) {
  // The vocabulary is the model's: a key scoped to other models may not read it.
  if (auto e = check_model(sv, "", caller_key(sv, req))) return error_response(*e);
  auto parsed = parse_tokenize_request(req.body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
  const TokenizeRequest& r = std::get<TokenizeRequest>(parsed);
  std::vector<int32_t> ids = sv.tokenizer->encode(r.content, r.add_special, /*parse_special=*/true);
  json tokens = json::array();
  for (int32_t id : ids) {
    if (r.with_pieces) {
      tokens.push_back({{"id", id}, {"piece", sanitize_utf8(sv.tokenizer->token_to_piece(id, true))}});
    } else {
      tokens.push_back(id);
    }
  }
  return json_text_response(dump({{"tokens", tokens}}));
}

HttpResponse handle_detokenize(Serving& sv, const HttpRequest& req) {
  if (auto e = check_model(sv, "", caller_key(sv, req))) return error_response(*e);
  auto parsed = parse_detokenize_request(req.body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
  const auto& ids = std::get<std::vector<int32_t>>(parsed);
  for (int32_t id : ids) {
    if (id >= sv.tokenizer->n_vocab()) {
      return error_response(bad_request(
          fmt::format("token id {} is outside the vocabulary of {}", id, sv.tokenizer->n_vocab()), "tokens"));
    }
  }
  return json_text_response(dump({{"content", sanitize_utf8(sv.tokenizer->decode(ids))}}));
}

}  // namespace hearth::server
