// The Ollama API (/api/...), for clients written against Ollama (the official `ollama` npm and
// Python clients, Open WebUI, editors' plugins). Each generating route is an adapter over the
// OpenAI handlers: the Ollama body is translated into the OpenAI request (same validation, same
// engine path, same limits and keys), and the answer back into Ollama's shape: NDJSON streams
// (`application/x-ndjson`) ending in a `done` object with the token counts and durations (ns).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/server/serving.h"

namespace hearth::server {

// POST /api/chat and /api/generate (streamed unless "stream": false, as Ollama).
HttpResponse handle_ollama_chat(Serving& sv, const HttpRequest& req, int key);
HttpResponse handle_ollama_generate(Serving& sv, const HttpRequest& req, int key);
// POST /api/embed ({"input": text or [texts]} -> "embeddings", L2-normalised as Ollama's) and the
// older /api/embeddings ({"prompt": text} -> "embedding").
HttpResponse handle_ollama_embed(Serving& sv, const HttpRequest& req, int key, bool legacy);
// A model that is configured but not loaded (an extra model before its first request).
struct UnloadedModel {
  std::string id;
  uint64_t file_bytes = 0;
};
// GET /api/tags (every model: `loaded` and `unloaded`), GET /api/ps (`loaded` only), as Ollama
// lists models; POST /api/show: one model.
HttpResponse handle_ollama_tags(const std::vector<std::shared_ptr<Serving>>& loaded,
                                const std::vector<UnloadedModel>& unloaded, bool running);
HttpResponse handle_ollama_show(const Serving& sv, const HttpRequest& req);
// GET /api/version.
HttpResponse handle_ollama_version();

// What /api/pull reports while it works (Ollama's progress lines).
struct PullProgress {
  std::string status;  // "pulling manifest", "pulling <digest>", "verifying sha256 digest", ...
  std::string digest;  // a blob's digest while it downloads ("" otherwise)
  uint64_t total = 0, completed = 0;
};
using PullProgressFn = std::function<void(const PullProgress&)>;

// The body of POST /api/pull and DELETE /api/delete: {"model" (or "name"), "stream", "insecure"}.
struct PullRequest {
  std::string name;
  bool stream = true;  // /api/pull streams its progress unless told not to
};
// nullopt when the body is valid, else the 400 to answer.
std::optional<HttpResponse> parse_pull_request(const std::string& body, PullRequest& out);
// The answer of /api/pull. Without `work`: `outcome` at once ({"status":"success"}, or the error
// as Ollama sends it). With `work` (stream only): NDJSON progress lines while it runs, each
// {"status", "digest", "total", "completed"}, then {"status":"success"} or {"error": ...}.
using PullWork = std::function<Status(const PullProgressFn&)>;
HttpResponse pull_answer(bool stream, const Status& outcome, PullWork work);
// An Ollama error answer: {"error": message} with `status`.
HttpResponse ollama_error(int status, const std::string& message);

// Whether an Ollama model name names the served model: exactly, or with the ":latest" tag that
// Ollama clients add to untagged names.
bool ollama_name_matches(const std::string& requested, const std::string& served);

// The body's "keep_alive" in seconds: a number, or a duration ("5m", "1h30m", "90s", "-1"); -1
// (or any negative) is forever, 0 unloads after the request. nullopt when absent or malformed
// (the handlers refuse a malformed one).
std::optional<int64_t> ollama_keep_alive_seconds(const std::string& body);

}  // namespace hearth::server
