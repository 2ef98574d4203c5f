// Server: `hearth serve` — an OpenAI-compatible HTTP API over one model. The HTTP socket is
// bound first (so /health answers 503 while the model loads), then the model, tokenizer and
// scheduler are created and the routes start serving.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hearth/core/mapped_file.h"
#include "hearth/core/status.h"
#include "hearth/engine/scheduler.h"
#include "hearth/server/auth.h"
#include "hearth/server/http_server.h"
#include "hearth/server/metrics.h"
#include "hearth/server/oip_api.h"
#include "hearth/server/ollama_api.h"
#include "hearth/server/openai_request.h"
#include "hearth/server/serving.h"

namespace hearth::server {

struct ServerConfig {
  // More models served beside the first (`hearth serve A B C`), each loaded on its first
  // request and unloaded by keep-alive or LRU eviction (--max-models, --max-memory).
  struct ExtraModel {
    std::string id;
    std::string path;
    std::shared_ptr<const MappedFile> mapping;  // a store model's verified mapping; null: map path
    // A store model verified only when it is first loaded (--models-from-store): gives the
    // verified mapping then. Used when `mapping` is null and this is set.
    std::function<Result<std::shared_ptr<const MappedFile>>()> open;
    std::function<void(const Status&)> on_loaded;
    uint64_t file_bytes = 0;  // listed before the model is loaded (0: the size of `path`)
  };
  std::vector<ExtraModel> extra_models;
  // The model store behind POST /api/pull and DELETE /api/delete (the CLI's store, registries
  // and trust policy; unset: those routes answer 501).
  struct ModelStore {
    // Makes the store reference `name` servable: from the local store, or pulled from the
    // configured registries first; verified against the trust policy. Reports its steps.
    std::function<Result<ExtraModel>(const std::string& name, const PullProgressFn& progress)> pull;
    // Removes the store reference `name` (its blobs stay until `hearth gc`); kNotFound when the
    // store has no such reference.
    std::function<Status(const std::string& name)> remove;
  };
  ModelStore model_store;
  int max_models = 3;           // loaded at once, the first model included
  uint64_t max_memory = 0;      // bytes of weights + KV cache loaded at once (0: no limit)
  int64_t keep_alive_s = -1;    // default keep-alive of an extra model (-1: until evicted)
  std::string model_path;
  // A store model's verified mapping (trust::VerifiedArtifact::weights()): loaded instead of
  // model_path, so the server runs exactly the bytes that were verified. Null: map model_path.
  std::shared_ptr<const MappedFile> model_mapping;
  // Called once the load finished, with its outcome (the CLI writes it to the audit log).
  std::function<void(const Status&)> on_model_loaded;
  std::string model_id;  // empty: the file name without ".gguf"
  HttpServerOptions http;
  engine::SchedulerParams scheduler;
  std::string chat_template;  // a built-in family's name (--chat-template); empty: the model's template
  std::string chat_template_source;  // a Jinja template used instead of the model's own (--chat-template-file)
  std::vector<ApiKey> keys;
  bool insecure_no_auth = false;  // allow a non-loopback bind without keys
  bool log_prompts = false;
  // The chat page at / and /ui/ (web_ui.h), loaded without a key; --no-webui turns it off.
  bool web_ui = true;
  // Origins whose browser pages may call the API (--cors-origin; "*": any). Empty: CORS is off,
  // so a page of another origin cannot read the answers.
  std::vector<std::string> cors_origins;
  RequestLimits limits;
  // LoRA adapters (--lora FILE[:SCALE]) loaded for the model, ids in this order; the scales
  // are the initial global scales (GET/POST /lora-adapters).
  struct Lora {
    std::string path;
    float scale = 1.0f;
    // A store adapter: the verified mapping it is parsed from (so that the bytes used are the
    // bytes hashed) and the reference it is listed under; null: read `path`.
    std::shared_ptr<const MappedFile> mapping;
    std::string name;
  };
  std::vector<Lora> lora;
  // ONNX models over the Open Inference Protocol, and the /v1/ocr and /v1/vad tasks
  // (oip_api.h); loaded when the server is created. With these and no language model, the
  // server serves only them.
  OnnxServiceConfig onnx;
};

// True for a loopback address, or a name that resolves only to loopback addresses (see
// http::is_loopback_host): "127.evil.example" is not loopback.
bool is_loopback_host(const std::string& host);

// A model's id from its file path: the file name without ".gguf".
std::string model_id_for_path(const std::string& path);

class Server {
 public:
  // Validates the configuration (refuses a non-loopback bind without keys unless
  // insecure_no_auth) and binds the socket.
  static Result<std::unique_ptr<Server>> create(ServerConfig config);
  ~Server();

  int port() const { return http_->port(); }
  // Serves while loading the model, then until stop(). Returns the load error, if any.
  Status run();
  // Safe to call from any thread (e.g. a signal watcher).
  void stop();

  // Serves `model` from now on under `model_id` (the fleet agent's switch): the tokenizer and
  // scheduler are built first, then the new Serving replaces the old one at once. Requests
  // that started on the old model finish on it; none fails because of the switch. With no
  // model_path in the config, the server starts without a model (503 until the first swap).
  Status swap_model(std::shared_ptr<model::Model> model, const std::string& model_id);
  // The model serving now (null before one is loaded).
  std::shared_ptr<model::Model> current_model() const;
  // The request counters and histograms (the fleet agent's telemetry and bake-window gates).
  const Metrics& metrics() const { return metrics_; }
  // The serving model's scheduler counters (the fleet agent's watchdog); nullopt before a model
  // serves. Lock-free against the scheduler's thread: answers even when a forward pass hangs.
  std::optional<engine::SchedulerStats> scheduler_stats() const;

 private:
  Server() = default;
  void add_routes();
  Status load();
  Result<std::shared_ptr<Serving>> make_serving(std::shared_ptr<model::Model> model, const std::string& model_id);
  std::shared_ptr<Serving> serving() const;
  // The Serving for a request's model name (the body's "model"): the first model for an empty
  // or matching name, else an extra model, loaded now if it is not (evicting the least recently
  // used ones over --max-models / --max-memory). Null with `error` set when no model has that
  // name or its load failed.
  std::shared_ptr<Serving> serving_for(const std::string& name, ApiError& error);
  // Keep-alive of an extra model after a request: seconds from now (0: unload now; -1: forever).
  void keep_alive(const std::string& id, int64_t seconds);
  // Unloads extra models whose keep-alive ran out (the reaper thread, every second).
  void reap_expired();
  HttpHandler model_route(std::function<HttpResponse(Serving&, const HttpRequest&, int key)> fn);
  HttpHandler guarded(bool needs_model, std::function<HttpResponse(const HttpRequest&, int key)> fn);
  // POST /api/pull and DELETE /api/delete (Ollama's shapes) over config_.model_store.
  HttpResponse handle_pull(const HttpRequest& req, int key);
  HttpResponse handle_delete(const HttpRequest& req, int key);
  // Whether `name` is served now (the first model or an extra one).
  bool serves(const std::string& name);
  // Adds an extra model (pulled at run time); false when one with its id is served already.
  bool add_extra(ServerConfig::ExtraModel spec);
  // Adds the CORS headers to a handler's answers (--cors-origin); the handler itself when off.
  HttpHandler with_cors(HttpHandler fn) const;

  ServerConfig config_;
  std::unique_ptr<HttpServer> http_;
  std::shared_ptr<OnnxService> onnx_;  // null without ONNX models or tasks
  std::unique_ptr<Auth> auth_;
  Metrics metrics_;
  mutable std::mutex serving_mu_;
  std::shared_ptr<Serving> serving_;  // the current one; replaced whole by swap_model
  struct Extra {
    ServerConfig::ExtraModel spec;
    std::shared_ptr<Serving> sv;  // null when not loaded
    bool loading = false;
    std::chrono::steady_clock::time_point last_used{};
    std::chrono::steady_clock::time_point expires = std::chrono::steady_clock::time_point::max();
    uint64_t bytes = 0;
  };
  std::mutex extras_mu_;
  std::condition_variable extras_cv_;
  // Guarded by extras_mu_; shared so that a request holds its entry while /api/delete drops it.
  std::vector<std::shared_ptr<Extra>> extras_;
  std::mutex reaper_mu_;
  std::condition_variable reaper_cv_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace hearth::server
