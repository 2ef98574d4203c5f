// The Ollama adapter: request translation (Ollama -> OpenAI body), response translation (OpenAI
// JSON or server-sent events -> Ollama JSON or NDJSON), and the model listing routes.
#include "hearth/server/ollama_api.h"

#include <chrono>
#include <cmath>
#include <algorithm>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "hearth/core/log.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// RFC 3339 UTC with nanoseconds, as Ollama writes created_at.
std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, ns % 1'000'000'000);
}

int64_t ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

// An OpenAI error response in Ollama's shape ({"error": "message"}, same status).
HttpResponse ollama_error_from(const HttpResponse& openai) {
  json e = json::parse(openai.body, nullptr, false);
  std::string message = "request failed";
  if (e.is_object() && e.contains("error") && e["error"].is_object() && e["error"].contains("message") &&
      e["error"]["message"].is_string()) {
    message = e["error"]["message"].get<std::string>();
  }
  HttpResponse r = ollama_error(openai.status, message);
  r.headers = openai.headers;
  return r;
}

std::optional<json> parse_body(const std::string& body, std::string& error) {
  if (json_nesting_depth(body) > kMaxJsonDepth) {
    error = fmt::format("the request body nests arrays and objects more than {} levels deep", kMaxJsonDepth);
    return std::nullopt;
  }
  json j = json::parse(sanitize_utf8(body), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    error = "the request body must be a JSON object";
    return std::nullopt;
  }
  return j;
}

// Ollama's options -> OpenAI sampling fields (and hearth's extras). Options hearth has no use
// for (num_gpu, num_thread, mirostat, ...) are ignored, as Ollama ignores unknown ones; num_ctx
// is the server's (-c), so it is ignored too.
std::optional<std::string> map_options(const json& j, json& out) {
  auto it = j.find("options");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) return "'options' must be an object";
  static const std::map<std::string, std::string> kSame = {
      {"temperature", "temperature"}, {"top_p", "top_p"},   {"top_k", "top_k"},
      {"min_p", "min_p"},             {"seed", "seed"},     {"repeat_penalty", "repeat_penalty"},
      {"presence_penalty", "presence_penalty"},             {"frequency_penalty", "frequency_penalty"},
      {"stop", "stop"}};
  for (const auto& [key, value] : it->items()) {
    if (auto m = kSame.find(key); m != kSame.end()) {
      out[m->second] = value;
    } else if (key == "num_predict") {
      if (!value.is_number_integer()) return "'options.num_predict' must be an integer";
      const int64_t n = value.get<int64_t>();
      if (n > 0) out["max_tokens"] = n;  // -1 (unbounded) and -2 (fill the context): the context
    }
  }
  return std::nullopt;
}

// "format": "json" or a JSON schema -> response_format.
std::optional<std::string> map_format(const json& j, json& out) {
  auto it = j.find("format");
  if (it == j.end() || it->is_null() || (it->is_string() && it->get_ref<const std::string&>().empty())) {
    return std::nullopt;
  }
  if (it->is_string()) {
    if (*it != "json") return "'format' must be \"json\" or a JSON schema object";
    out["response_format"] = {{"type", "json_object"}};
  } else if (it->is_object()) {
    out["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "format"}, {"schema", *it}}}};
  } else {
    return "'format' must be \"json\" or a JSON schema object";
  }
  return std::nullopt;
}

// keep_alive: a duration string ("5m", "1h30m", "-1", "0") or a number of seconds. With one model
// served it changes nothing (the model stays loaded); it is checked so that a typo is an error.
std::optional<std::string> check_keep_alive(const json& j) {
  auto it = j.find("keep_alive");
  if (it == j.end() || it->is_null() || it->is_number()) return std::nullopt;
  if (!it->is_string()) return "'keep_alive' must be a duration (\"5m\") or a number of seconds";
  const std::string& s = it->get_ref<const std::string&>();
  size_t i = s.starts_with('-') ? 1 : 0;
  bool digits = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if ((c >= '0' && c <= '9') || c == '.') {
      digits = true;
    } else if ((c == 'h' || c == 'm' || c == 's' || c == 'u' || c == 'n') && digits) {
      digits = false;
      if (c == 'm' && i + 1 < s.size() && s[i + 1] == 's') ++i;  // "ms"
      if ((c == 'u' || c == 'n') && (i + 1 >= s.size() || s[i + 1] != 's')) return "'keep_alive' is not a duration";
      if (c == 'u' || c == 'n') ++i;
    } else {
      return "'keep_alive' must be a duration (\"5m\", \"1h\", \"-1\") or a number of seconds, not '" + s + "'";
    }
  }
  return std::nullopt;
}

// Ollama messages -> OpenAI messages: tool calls' arguments are objects in both (the OpenAI
// parser accepts objects), "tool_name" becomes "name", images are refused.
std::optional<std::string> map_messages(const json& messages, json& out) {
  if (!messages.is_array()) return "'messages' must be an array";
  json list = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object()) return fmt::format("'messages[{}]' must be an object", i);
    if (auto im = m.find("images"); im != m.end() && !im->is_null() && !(im->is_array() && im->empty())) {
      return fmt::format("'messages[{}].images': this model takes text only", i);
    }
    json o = json::object();
    for (const char* k : {"role", "content", "tool_calls"}) {
      if (auto f = m.find(k); f != m.end()) o[k] = *f;
    }
    if (auto f = m.find("tool_name"); f != m.end()) o["name"] = *f;
    if (!o.contains("content")) o["content"] = "";
    if (o.contains("tool_calls") && o["tool_calls"].is_array()) {
      for (json& c : o["tool_calls"]) {
        if (c.is_object() && !c.contains("type")) c["type"] = "function";
      }
    }
    list.push_back(std::move(o));
  }
  out["messages"] = std::move(list);
  return std::nullopt;
}

// Ollama's tool_calls: [{"function": {"name", "arguments": {object}}}].
json ollama_tool_calls(const json& openai_calls) {
  json out = json::array();
  if (!openai_calls.is_array()) return out;
  for (const json& c : openai_calls) {
    if (!c.is_object() || !c.contains("function")) continue;
    const json& f = c["function"];
    json args = json::object();
    if (f.contains("arguments") && f["arguments"].is_string()) {
      args = json::parse(f["arguments"].get<std::string>(), nullptr, false);
      if (args.is_discarded()) args = json::object();
    }
    out.push_back({{"function", {{"name", f.value("name", "")}, {"arguments", args}}}});
  }
  return out;
}

struct Timing {
  Clock::time_point start = Clock::now();
  Clock::time_point first{};
  bool got_first = false;
  void mark_first() {
    if (!got_first) {
      got_first = true;
      first = Clock::now();
    }
  }
  // The done object's fields: counts from the OpenAI usage, durations measured here (the
  // prompt's evaluation ends with the first token).
  void fill(json& out, const json& usage) const {
    const auto end = Clock::now();
    const auto first_at = got_first ? first : end;
    out["total_duration"] = ns_between(start, end);
    out["load_duration"] = 0;
    out["prompt_eval_count"] = usage.is_object() ? usage.value("prompt_tokens", 0) : 0;
    out["prompt_eval_duration"] = ns_between(start, first_at);
    out["eval_count"] = usage.is_object() ? usage.value("completion_tokens", 0) : 0;
    out["eval_duration"] = ns_between(first_at, end);
  }
};

const char* done_reason(const std::string& finish) { return finish == "length" ? "length" : "stop"; }

// Rewrites the OpenAI handler's server-sent events as Ollama NDJSON lines.
class NdjsonWriter : public StreamWriter {
 public:
  NdjsonWriter(StreamWriter& out, std::string model, bool chat, std::shared_ptr<Timing> timing)
      : out_(out), model_(std::move(model)), chat_(chat), timing_(std::move(timing)) {}

  bool write(std::string_view data) override {
    buffer_.append(data);
    size_t end;
    while ((end = buffer_.find("\n\n")) != std::string::npos) {
      std::string event = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      if (!event.starts_with("data: ")) continue;
      if (!handle(std::string_view(event).substr(6))) return false;
    }
    return true;
  }

 private:
  json line() const { return {{"model", model_}, {"created_at", now_rfc3339()}}; }

  bool emit(const json& j) { return out_.write(dump(j) + "\n"); }

  bool handle(std::string_view payload) {
    if (payload == "[DONE]") {
      if (done_sent_) return true;
      json d = line();
      if (chat_) {
        d["message"] = {{"role", "assistant"}, {"content", ""}};
      } else {
        d["response"] = "";
      }
      d["done"] = true;
      d["done_reason"] = done_reason(finish_);
      timing_->fill(d, usage_);
      done_sent_ = true;
      return emit(d);
    }
    json j = json::parse(payload, nullptr, false);
    if (!j.is_object()) return true;
    if (auto e = j.find("error"); e != j.end()) {
      std::string message = e->is_object() ? e->value("message", "generation failed") : "generation failed";
      done_sent_ = true;
      return emit(json{{"error", message}});
    }
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) usage_ = *u;
    auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return true;
    const json& c = (*choices)[0];
    if (c.contains("finish_reason") && c["finish_reason"].is_string()) finish_ = c["finish_reason"];
    std::string text;
    json calls;
    if (chat_) {
      const json& delta = c.value("delta", json::object());
      if (delta.contains("content") && delta["content"].is_string()) text = delta["content"];
      if (delta.contains("tool_calls")) calls = ollama_tool_calls(delta["tool_calls"]);
    } else if (c.contains("text") && c["text"].is_string()) {
      text = c["text"];
    }
    if (text.empty() && calls.empty()) return true;
    timing_->mark_first();
    json l = line();
    if (chat_) {
      l["message"] = {{"role", "assistant"}, {"content", text}};
      if (!calls.empty()) l["message"]["tool_calls"] = calls;
    } else {
      l["response"] = text;
    }
    l["done"] = false;
    return emit(l);
  }

  StreamWriter& out_;
  std::string model_;
  bool chat_;
  std::shared_ptr<Timing> timing_;
  std::string buffer_;
  std::string finish_ = "stop";
  json usage_;
  bool done_sent_ = false;
};

// Runs the translated OpenAI request and answers in Ollama's shape. `ollama_name`: the name the
// client used (echoed back as "model").
HttpResponse run_generation(Serving& sv, const HttpRequest& req, int key, json openai, bool chat, bool stream,
                            const std::string& ollama_name) {
  auto timing = std::make_shared<Timing>();
  openai["model"] = sv.model_id;
  openai["stream"] = stream;
  if (stream) openai["stream_options"] = {{"include_usage", true}};
  HttpRequest inner = req;
  inner.body = dump(openai);
  HttpResponse r = handle_completion(sv, inner, chat, key);
  if (r.status != 200) return ollama_error_from(r);
  if (stream) {
    HttpResponse out;
    out.content_type = "application/x-ndjson";
    auto inner_stream = std::move(r.stream);
    out.stream = [inner_stream, timing, ollama_name, chat](StreamWriter& w) {
      NdjsonWriter adapter(w, ollama_name, chat, timing);
      inner_stream(adapter);
    };
    return out;
  }
  const json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("choices") || j["choices"].empty()) return ollama_error(500, "no choice");
  const json& c = j["choices"][0];
  timing->mark_first();
  json out = {{"model", ollama_name}, {"created_at", now_rfc3339()}};
  if (chat) {
    const json& m = c["message"];
    out["message"] = {{"role", "assistant"}, {"content", m["content"].is_string() ? m["content"] : json("")}};
    if (m.contains("tool_calls")) out["message"]["tool_calls"] = ollama_tool_calls(m["tool_calls"]);
  } else {
    out["response"] = c.value("text", "");
  }
  out["done"] = true;
  out["done_reason"] = done_reason(c.value("finish_reason", "stop"));
  // Without a stream the first token's time is not seen: the prompt's share is not split out.
  timing->first = timing->start;
  timing->fill(out, j.value("usage", json::object()));
  return json_text_response(dump(out));
}

// The checks both generating routes share: the model name, keep_alive, the stream flag.
std::optional<HttpResponse> common_checks(const Serving& sv, const json& j, std::string& name, bool& stream) {
  auto m = j.find("model");
  if (m == j.end() || !m->is_string() || m->get_ref<const std::string&>().empty()) {
    return ollama_error(400, "'model' is required");
  }
  name = m->get<std::string>();
  if (!ollama_name_matches(name, sv.model_id)) {
    return ollama_error(404, "model '" + name + "' not found (GET /api/tags lists this server's models)");
  }
  if (auto e = check_keep_alive(j)) return ollama_error(400, *e);
  stream = true;  // Ollama streams unless told not to
  if (auto s = j.find("stream"); s != j.end() && !s->is_null()) {
    if (!s->is_boolean()) return ollama_error(400, "'stream' must be a boolean");
    stream = s->get<bool>();
  }
  return std::nullopt;
}

// The dominant weight type of the file ("Q4_K", "F16"), as Ollama's quantization_level.
std::string quantization_level(const model::Model& m) {
  std::map<std::string, uint64_t> bytes;
  for (const auto& t : m.gguf().tensors()) {
    if (t.n_dims >= 2) bytes[std::string(type_name(t.type))] += t.n_bytes;
  }
  std::string best;
  uint64_t most = 0;
  for (const auto& [name, b] : bytes) {
    if (b > most) most = b, best = name;
  }
  for (char& c : best) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return best;
}

uint64_t parameter_count(const model::Model& m) {
  uint64_t n = 0;
  for (const auto& t : m.gguf().tensors()) n += t.n_elements;
  return n;
}

// "260K", "1.1B", as Ollama's parameter_size.
std::string parameter_size(uint64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.1f}B", static_cast<double>(n) / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.1f}M", static_cast<double>(n) / 1e6);
  return fmt::format("{:.0f}K", static_cast<double>(n) / 1e3);
}

json model_details(const Serving& sv) {
  const std::string& arch = sv.model->hparams().arch;
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", arch},
          {"families", json::array({arch})},
          {"parameter_size", parameter_size(parameter_count(*sv.model))},
          {"quantization_level", quantization_level(*sv.model)}};
}

std::string listed_name(const std::string& id) { return id.find(':') == std::string::npos ? id + ":latest" : id; }

std::string time_rfc3339(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Ollama's answer to a request with nothing to generate: it loads the model and says so.
HttpResponse loaded_answer(const std::string& name, bool chat) {
  json out = {{"model", name}, {"created_at", now_rfc3339()}, {"done_reason", "load"}, {"done", true}};
  if (chat) {
    out["message"] = {{"role", "assistant"}, {"content", ""}};
  } else {
    out["response"] = "";
  }
  return json_text_response(dump(out));
}

}  // namespace

HttpResponse ollama_error(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = dump(json{{"error", message}});
  return r;
}

std::optional<HttpResponse> parse_pull_request(const std::string& body, PullRequest& out) {
  std::string error;
  auto j = parse_body(body, error);
  if (!j) return ollama_error(400, error);
  for (const char* k : {"model", "name"}) {
    auto it = j->find(k);
    if (it == j->end() || it->is_null()) continue;
    if (!it->is_string()) return ollama_error(400, std::string("'") + k + "' must be a string");
    out.name = it->get<std::string>();
    break;
  }
  if (out.name.empty()) return ollama_error(400, "'model' is required");
  if (out.name.size() > 512) return ollama_error(400, "'model' is longer than 512 bytes");
  if (auto s = j->find("stream"); s != j->end() && !s->is_null()) {
    if (!s->is_boolean()) return ollama_error(400, "'stream' must be a boolean");
    out.stream = s->get<bool>();
  }
  if (auto s = j->find("insecure"); s != j->end() && !s->is_null() && !s->is_boolean()) {
    return ollama_error(400, "'insecure' must be a boolean");
  }
  return std::nullopt;
}

HttpResponse pull_answer(bool stream, const Status& outcome, PullWork work) {
  auto status_of = [](const Status& s) {
    if (s.ok()) return 200;
    switch (s.code()) {
      case ErrorCode::kInvalidArgument: return 400;
      case ErrorCode::kNotFound: return 404;
      case ErrorCode::kPermissionDenied:
      case ErrorCode::kUnauthenticated: return 403;  // the trust policy refused the model
      case ErrorCode::kResourceExhausted: return 507;
      default: return 500;
    }
  };
  if (!stream) {
    if (!outcome.ok()) return ollama_error(status_of(outcome), outcome.message());
    return json_text_response(dump(json{{"status", "success"}}));
  }
  HttpResponse r;
  r.content_type = "application/x-ndjson";
  r.stream = [outcome, work = std::move(work)](StreamWriter& w) {
    std::mutex mu;  // progress comes from several download threads
    bool alive = true;
    auto last = Clock::now() - std::chrono::seconds(1);
    auto emit = [&](const json& line) {
      if (alive) alive = w.write(dump(line) + "\n");
    };
    Status done = outcome;
    if (work) {
      done = work([&](const PullProgress& p) {
        std::lock_guard lock(mu);
        // A blob's byte counts at most ~5 times a second (and its last one); every step line.
        const bool bytes_line = !p.digest.empty() && p.completed < p.total;
        if (bytes_line && Clock::now() - last < std::chrono::milliseconds(200)) return;
        last = Clock::now();
        json line = {{"status", p.status}};
        if (!p.digest.empty()) {
          line["digest"] = p.digest;
          line["total"] = p.total;
          line["completed"] = p.completed;
        }
        emit(line);
      });
    }
    std::lock_guard lock(mu);
    emit(done.ok() ? json{{"status", "success"}} : json{{"error", done.message()}});
  };
  return r;
}

bool ollama_name_matches(const std::string& requested, const std::string& served) {
  if (requested == served) return true;
  return requested == served + ":latest";
}

HttpResponse handle_ollama_chat(Serving& sv, const HttpRequest& req, int key) {
  std::string error;
  auto body = parse_body(req.body, error);
  if (!body) return ollama_error(400, error);
  const json& j = *body;
  std::string name;
  bool stream = true;
  if (auto e = common_checks(sv, j, name, stream)) return *e;
  json openai = json::object();
  auto messages = j.find("messages");
  if (messages == j.end() || messages->is_null() || (messages->is_array() && messages->empty())) {
    return loaded_answer(name, /*chat=*/true);  // the model is loaded (by the route) already
  }
  if (auto e = map_messages(*messages, openai)) return ollama_error(400, *e);
  if (auto e = map_options(j, openai)) return ollama_error(400, *e);
  if (auto e = map_format(j, openai)) return ollama_error(400, *e);
  if (auto t = j.find("tools"); t != j.end() && !t->is_null()) openai["tools"] = *t;
  // Not in Ollama's API: hearth takes OpenAI's tool_choice here too ("required", a named
  // function), validated by the OpenAI handler; Ollama's clients pass the field through.
  if (auto t = j.find("tool_choice"); t != j.end() && !t->is_null()) openai["tool_choice"] = *t;
  return run_generation(sv, req, key, std::move(openai), /*chat=*/true, stream, name);
}

HttpResponse handle_ollama_generate(Serving& sv, const HttpRequest& req, int key) {
  std::string error;
  auto body = parse_body(req.body, error);
  if (!body) return ollama_error(400, error);
  const json& j = *body;
  std::string name;
  bool stream = true;
  if (auto e = common_checks(sv, j, name, stream)) return *e;
  auto text_field = [&](const char* k, std::string& out) -> std::optional<std::string> {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) return fmt::format("'{}' must be a string", k);
    out = it->get<std::string>();
    return std::nullopt;
  };
  std::string prompt, system, suffix, tmpl;
  for (auto [k, out] : {std::pair{"prompt", &prompt}, {"system", &system}, {"suffix", &suffix}, {"template", &tmpl}}) {
    if (auto e = text_field(k, *out)) return ollama_error(400, *e);
  }
  if (!suffix.empty()) return ollama_error(400, "'suffix' (fill-in-the-middle) is not supported");
  if (!tmpl.empty()) {
    return ollama_error(400, "'template' (a Go template) is not supported: hearth renders the model's own Jinja "
                             "template; send \"raw\": true with a prompt you formatted");
  }
  if (auto im = j.find("images"); im != j.end() && !im->is_null() && !(im->is_array() && im->empty())) {
    return ollama_error(400, "'images': this model takes text only");
  }
  bool raw = false;
  if (auto r = j.find("raw"); r != j.end() && !r->is_null()) {
    if (!r->is_boolean()) return ollama_error(400, "'raw' must be a boolean");
    raw = r->get<bool>();
  }
  if (prompt.empty()) return loaded_answer(name, /*chat=*/false);
  json openai = json::object();
  if (auto e = map_options(j, openai)) return ollama_error(400, *e);
  if (auto e = map_format(j, openai)) return ollama_error(400, *e);
  if (raw) {
    openai["prompt"] = prompt;
    // Ollama generates until the end (num_predict -1), not the completions API's 16 tokens.
    if (!openai.contains("max_tokens")) openai["max_tokens"] = nullptr;
    return run_generation(sv, req, key, std::move(openai), /*chat=*/false, stream, name);
  }
  // Not raw: the prompt is a user turn (after the system text) through the model's template.
  json messages = json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  messages.push_back({{"role", "user"}, {"content", prompt}});
  openai["messages"] = std::move(messages);
  // The chat path answers in "message"; run_generation reads it as "response" for generate.
  HttpResponse r = run_generation(sv, req, key, std::move(openai), /*chat=*/true, stream, name);
  if (r.status != 200) return r;
  if (r.stream) {
    auto inner = std::move(r.stream);
    // Rename message.content -> response in each line.
    class Rename : public StreamWriter {
     public:
      explicit Rename(StreamWriter& o) : out_(o) {}
      bool write(std::string_view data) override {
        json l = json::parse(data, nullptr, false);
        if (!l.is_object() || !l.contains("message")) return out_.write(data);
        l["response"] = l["message"].value("content", "");
        l.erase("message");
        return out_.write(dump(l) + "\n");
      }

     private:
      StreamWriter& out_;
    };
    r.stream = [inner](StreamWriter& w) {
      Rename rename(w);
      inner(rename);
    };
    return r;
  }
  json l = json::parse(r.body, nullptr, false);
  if (l.is_object() && l.contains("message")) {
    l["response"] = l["message"].value("content", "");
    l.erase("message");
  }
  return json_text_response(dump(l));
}

HttpResponse handle_ollama_embed(Serving& sv, const HttpRequest& req, int key, bool legacy) {
  std::string error;
  auto body = parse_body(req.body, error);
  if (!body) return ollama_error(400, error);
  const json& j = *body;
  auto m = j.find("model");
  if (m == j.end() || !m->is_string()) return ollama_error(400, "'model' is required");
  const std::string name = m->get<std::string>();
  if (!ollama_name_matches(name, sv.model_id)) return ollama_error(404, "model '" + name + "' not found");
  if (auto e = check_keep_alive(j)) return ollama_error(400, *e);
  const auto start = Clock::now();
  json openai = {{"model", sv.model_id}};
  if (legacy) {
    auto p = j.find("prompt");
    if (p == j.end() || !p->is_string()) return ollama_error(400, "'prompt' must be a string");
    openai["input"] = *p;
  } else {
    auto in = j.find("input");
    if (in == j.end() || in->is_null()) return ollama_error(400, "'input' is required");
    openai["input"] = *in;
  }
  HttpRequest inner = req;
  inner.body = dump(openai);
  HttpResponse r = handle_embeddings(sv, inner, key);
  if (r.status != 200) return ollama_error_from(r);
  const json o = json::parse(r.body, nullptr, false);
  json embeddings = json::array();
  for (const json& d : o["data"]) {
    std::vector<double> v = d["embedding"].get<std::vector<double>>();
    if (!legacy) {  // /api/embed answers unit vectors
      double norm = 0.0;
      for (double x : v) norm += x * x;
      norm = std::sqrt(norm);
      if (norm > 0.0) {
        for (double& x : v) x /= norm;
      }
    }
    embeddings.push_back(v);
  }
  if (legacy) return json_text_response(dump(json{{"embedding", embeddings.empty() ? json::array() : embeddings[0]}}));
  json out = {{"model", name},
              {"embeddings", embeddings},
              {"total_duration", ns_between(start, Clock::now())},
              {"load_duration", 0},
              {"prompt_eval_count", o["usage"].value("prompt_tokens", 0)}};
  return json_text_response(dump(out));
}

HttpResponse handle_ollama_tags(const std::vector<std::shared_ptr<Serving>>& loaded,
                                const std::vector<UnloadedModel>& unloaded, bool running) {
  json models = json::array();
  for (const auto& sv : loaded) {
    json m = {{"name", listed_name(sv->model_id)},
              {"model", listed_name(sv->model_id)},
              {"size", sv->model->file_bytes()},
              {"digest", ""},
              {"details", model_details(*sv)}};
    if (running) {
      m["expires_at"] = "2318-08-22T00:00:00Z";  // hearth does not report the keep-alive deadline
      m["size_vram"] = 0;
      m["context_length"] = sv->scheduler->n_ctx();
    } else {
      m["modified_at"] = time_rfc3339(sv->created);
    }
    models.push_back(std::move(m));
  }
  if (!running) {
    for (const UnloadedModel& u : unloaded) {
      models.push_back({{"name", listed_name(u.id)},
                        {"model", listed_name(u.id)},
                        {"size", u.file_bytes},
                        {"digest", ""},
                        {"details", {{"format", "gguf"}}}});
    }
  }
  return json_text_response(dump(json{{"models", models}}));
}

std::optional<int64_t> ollama_keep_alive_seconds(const std::string& body) {
  if (json_nesting_depth(body) > kMaxJsonDepth) return std::nullopt;
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto it = j.find("keep_alive");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_number()) {
    const double v = it->get<double>();
    if (!std::isfinite(v)) return std::nullopt;
    return v < 0 ? -1 : static_cast<int64_t>(std::min(v, 1e12));
  }
  if (!it->is_string() || check_keep_alive(j)) return std::nullopt;
  const std::string& s = it->get_ref<const std::string&>();
  if (s.starts_with('-')) return -1;
  // Go durations: a sequence of number + unit (h, m, s, ms, us, ns); a bare number is seconds.
  double total = 0.0, number = 0.0, scale = 0.0;
  bool in_number = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      number = scale > 0 ? number + (c - '0') * scale : number * 10 + (c - '0');
      if (scale > 0) scale /= 10;
      in_number = true;
    } else if (c == '.') {
      scale = 0.1;
    } else {
      double unit = 1.0;
      if (c == 'h') unit = 3600;
      if (c == 'm') unit = i + 1 < s.size() && s[i + 1] == 's' ? 1e-3 : 60;
      if (c == 'u' || c == 'n') unit = c == 'u' ? 1e-6 : 1e-9;
      if ((c == 'm' && unit < 1) || c == 'u' || c == 'n') ++i;
      total += number * unit;
      number = 0, scale = 0, in_number = false;
    }
  }
  if (in_number) total += number;  // trailing bare number: seconds
  return static_cast<int64_t>(std::min(total, 1e12));
}

HttpResponse handle_ollama_show(const Serving& sv, const HttpRequest& req) {
  std::string error;
  auto body = parse_body(req.body, error);
  if (!body) return ollama_error(400, error);
  std::string name;
  for (const char* k : {"model", "name"}) {
    if (auto it = body->find(k); it != body->end() && it->is_string()) name = it->get<std::string>();
  }
  if (name.empty()) return ollama_error(400, "'model' is required");
  if (!ollama_name_matches(name, sv.model_id)) return ollama_error(404, "model '" + name + "' not found");
  const model::HParams& hp = sv.model->hparams();
  auto tmpl = sv.model->gguf().get_string("tokenizer.chat_template");
  json capabilities = json::array({"completion"});
  if (sv.chat_format.is_jinja() && tmpl.ok() && tmpl->find("tools") != std::string_view::npos) {
    capabilities.push_back("tools");
  }
  json info = {{"general.architecture", hp.arch},
               {"general.parameter_count", parameter_count(*sv.model)},
               {hp.arch + ".context_length", hp.n_ctx_train},
               {hp.arch + ".embedding_length", hp.n_embd},
               {hp.arch + ".block_count", hp.n_layer},
               {hp.arch + ".attention.head_count", hp.n_head},
               {hp.arch + ".attention.head_count_kv", hp.n_head_kv}};
  json out = {{"license", ""},
              {"modelfile", ""},
              {"parameters", ""},
              {"template", tmpl.ok() ? std::string(*tmpl) : std::string()},
              {"details", model_details(sv)},
              {"model_info", info},
              {"capabilities", capabilities},
              {"modified_at", time_rfc3339(sv.created)}};
  return json_text_response(dump(out));
}

HttpResponse handle_ollama_version() { return json_text_response(dump(json{{"version", HEARTH_VERSION}})); }

}  // namespace hearth::server
