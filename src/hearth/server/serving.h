// Serving: what request handlers need once the model is loaded, and the handlers of the
// model-backed routes (completions, chat, embeddings, tokenize, detokenize, lora-adapters).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hearth/engine/chat_template.h"
#include "hearth/engine/scheduler.h"
#include "hearth/model/lora_adapter.h"
#include "hearth/model/model.h"
#include "hearth/server/auth.h"
#include "hearth/server/http_server.h"
#include "hearth/server/metrics.h"
#include "hearth/server/openai_request.h"
#include "hearth/tokenizer/tokenizer.h"

namespace hearth::server {

// The LoRA adapters loaded with the model (--lora), by id (their order on the command line),
// with the global scales that POST /lora-adapters sets and requests without "lora" use.
struct LoraTable {
  std::vector<std::shared_ptr<const model::LoraAdapter>> adapters;
  std::vector<std::string> paths;  // as given
  mutable std::mutex mu;
  std::vector<float> scales;  // guarded by mu
};

// The server holds its Serving through a shared_ptr and replaces it whole when the model
// changes (Server::swap_model); a request keeps the one it started on until it finishes.
struct Serving : std::enable_shared_from_this<Serving> {
  std::shared_ptr<model::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<engine::Scheduler> scheduler;
  engine::ChatFormat chat_format;  // the model's own template (Jinja), or a built-in family
  std::string model_id;
  int64_t created = 0;  // unix time the model was loaded
  RequestLimits limits;
  bool log_prompts = false;
  Metrics* metrics = nullptr;
  Auth* auth = nullptr;
  LoraTable lora;
};

// Token counts and time to first token of the request being handled on this thread, for the
// access log (the HTTP layer writes a streamed body on the thread that ran the handler).
struct RequestStats {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double ttft_s = -1.0;
};
RequestStats& current_request_stats();

// `key` is the caller's API key index (-1 without auth).
HttpResponse handle_completion(Serving& sv, const HttpRequest& req, bool chat, int key);
HttpResponse handle_embeddings(Serving& sv, const HttpRequest& req, int key);
HttpResponse handle_tokenize(Serving& sv, const HttpRequest& req);
HttpResponse handle_detokenize(Serving& sv, const HttpRequest& req);
// GET /lora-adapters: [{"id":0,"path":"...","scale":1.0}, ...]; POST /lora-adapters with
// [{"id":0,"scale":0.5}, ...] sets the global scales (adapters not listed: 0, as llama.cpp).
HttpResponse handle_lora_list(const Serving& sv);
HttpResponse handle_lora_set(Serving& sv, const HttpRequest& req);
// The adapters a request runs with: the request's own "lora" scales when it has them (unlisted
// adapters: 0), else the global scales; adapters of scale 0 are left out. An unknown id is a
// 400 naming it.
ApiResult<std::vector<model::LoraUse>> lora_for_request(const Serving& sv,
                                                        const std::optional<std::vector<LoraScale>>& scales);

HttpResponse error_response(const ApiError& e);
HttpResponse json_text_response(std::string body, int status = 200);

}  // namespace hearth::server
