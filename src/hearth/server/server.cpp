// Server setup: security checks, routes, authentication, access log, model loading.
#include "hearth/server/server.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "hearth/core/log.h"
#include "hearth/model/kv_cache.h"
#include "hearth/server/ollama_api.h"
#include "hearth/server/web_ui.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

std::string model_id_from_path(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  if (name.size() > 5 && name.substr(name.size() - 5) == ".gguf") name.resize(name.size() - 5);
  return name;
}

// Route label for metrics: the route pattern, so that ids in paths do not explode the label set.
std::string route_label(const std::string& path) {
  static const char* kRoutes[] = {
      "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models",    "/tokenize",
      "/detokenize",          "/health",         "/metrics",       "/lora-adapters", "/api/chat",
      "/api/generate",        "/api/embed",      "/api/embeddings", "/api/tags",     "/api/ps",
      "/api/show",            "/api/version",    "/api/pull",       "/api/delete"};
  for (const char* r : kRoutes) {
    if (path == r) return r;
  }
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

HttpResponse unauthorized(const HttpRequest& req) {
  const bool missing = req.header("authorization").empty() && req.header("x-api-key").empty();
  ApiError e{401,
             missing ? "no API key given: send 'Authorization: Bearer KEY'" : "the API key is not valid",
             "invalid_request_error",
             "",
             "invalid_api_key",
             {}};
  e.headers.emplace_back("WWW-Authenticate", "Bearer");
  return error_response(e);
}

// The model a request body names ("model", or "name" for /api/show; "" when none), read with
// the request parsers' depth bound. The handler parses the body again, fully.
std::string body_model(const std::string& body) {
  if (body.empty() || json_nesting_depth(body) > kMaxJsonDepth) return "";
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "";
  for (const char* k : {"model", "name"}) {
    if (auto it = j.find(k); it != j.end() && it->is_string()) return it->get<std::string>();
  }
  return "";
}

// Bytes a loaded model holds: its file (mapped), its repacked weights and its KV cache.
uint64_t serving_bytes(const Serving& sv, const engine::SchedulerParams& p) {
  return sv.model->file_bytes() + sv.model->packed_bytes() +
         model::KvCache::bytes_needed(sv.model->hparams(), sv.scheduler->n_ctx(), sv.scheduler->n_slots(), p.kv_type,
                                       p.n_batch);
}

// The CORS headers for a request from `origin` when it is allowed (the origin echoed, or "*").
void add_cors_headers(const std::vector<std::string>& allowed, const HttpRequest& req, HttpResponse& r) {
  if (allowed.empty()) return;
  const std::string origin = req.header("origin");
  if (origin.empty()) return;
  const bool any = std::find(allowed.begin(), allowed.end(), "*") != allowed.end();
  if (!any && std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) return;
  r.headers.emplace_back("Access-Control-Allow-Origin", any ? "*" : origin);
  r.headers.emplace_back("Vary", "Origin");
}

}  // namespace

bool is_loopback_host(const std::string& host) { return http::is_loopback_host(host); }

std::string model_id_for_path(const std::string& path) { return model_id_from_path(path); }

Result<std::unique_ptr<Server>> Server::create(ServerConfig config) {
  // Decided on what the name resolves to ("127.evil.example" is not loopback), and again on
  // the address actually bound below.
  const bool needs_key = config.keys.empty() && !config.insecure_no_auth;
  auto refuse = [&](const std::string& what) {
    return make_error(ErrorCode::kPermissionDenied,
                      "refusing to listen on {} (not a loopback address) without an API key: pass --api-key or "
                      "--api-key-file, or --insecure-no-auth to allow anyone who can reach the port",
                      what);
  };
  if (needs_key && !is_loopback_host(config.http.host)) return refuse(config.http.host);
  if (config.model_id.empty()) config.model_id = model_id_from_path(config.model_path);
  std::unique_ptr<Server> s(new Server());
  s->config_ = std::move(config);
  s->auth_ = std::make_unique<Auth>(s->config_.keys);
  HEARTH_ASSIGN_OR_RETURN(s->http_, HttpServer::create(s->config_.http));
  const auto& ox = s->config_.onnx;
  if (!ox.models.empty() || !ox.ocr_models_dir.empty() || !ox.vad_model.empty()) {
    HEARTH_ASSIGN_OR_RETURN(auto svc, OnnxService::create(ox));
    s->onnx_ = std::move(svc);
  }
  for (const ServerConfig::ExtraModel& m : s->config_.extra_models) {
    auto e = std::make_shared<Extra>();
    e->spec = m;
    s->extras_.push_back(std::move(e));
  }
  s->add_routes();
  HEARTH_TRY(s->http_->bind());
  if (needs_key && !http::is_loopback_host(s->http_->bound_address())) {
    return refuse(s->config_.http.host + " (" + s->http_->bound_address() + ")");
  }
  return s;
}

Server::~Server() {
  stop();
  {
    std::lock_guard lock(extras_mu_);
    for (auto& e : extras_) e->sv.reset();
  }
  // The scheduler must stop (and release its channels) before the HTTP layer goes away.
  std::lock_guard lock(serving_mu_);
  serving_.reset();
}

HttpHandler Server::guarded(bool needs_model, std::function<HttpResponse(const HttpRequest&, int key)> fn) {
  return with_cors([this, needs_model, fn = std::move(fn)](const HttpRequest& req) -> HttpResponse {
    current_request_stats() = RequestStats{};
    int key = -1;
    if (auth_->enabled()) {
      key = auth_->authenticate(req.header("authorization"), req.header("x-api-key"));
      if (key < 0) return unauthorized(req);
      if (int64_t wait = auth_->admit_request(key); wait > 0) {
        ApiError e{429,
                   fmt::format("rate limit reached for {}; retry in {} s", auth_->key(key).label, wait),
                   "rate_limit_error",
                   "",
                   "rate_limit_exceeded",
                   {}};
        e.headers.emplace_back("Retry-After", std::to_string(wait));
        return error_response(e);
      }
    }
    if (needs_model && !ready_.load(std::memory_order_acquire)) {
      ApiError e{503, "the model is loading", "unavailable_error", "", "model_loading", {}};
      e.headers.emplace_back("Retry-After", "1");
      return error_response(e);
    }
    return fn(req, key);
  });
}

HttpHandler Server::model_route(std::function<HttpResponse(Serving&, const HttpRequest&, int key)> fn) {
  return guarded(true, [this, fn = std::move(fn)](const HttpRequest& req, int key) -> HttpResponse {
    ApiError error;
    std::shared_ptr<Serving> sv = serving_for(body_model(req.body), error);
    if (!sv) return error_response(error);
    HttpResponse r = fn(*sv, req, key);
    if (req.path.rfind("/api/", 0) == 0) {
      if (std::optional<int64_t> s = ollama_keep_alive_seconds(req.body)) keep_alive(sv->model_id, *s);
    }
    return r;
  });
}

std::shared_ptr<Serving> Server::serving_for(const std::string& name, ApiError& error) {
  std::shared_ptr<Serving> primary = serving();
  if (name.empty() || (primary && ollama_name_matches(name, primary->model_id))) return primary;
  std::unique_lock lock(extras_mu_);
  auto it = std::find_if(extras_.begin(), extras_.end(),
                         [&](const std::shared_ptr<Extra>& e) { return ollama_name_matches(name, e->spec.id); });
  if (it == extras_.end()) return primary;  // the handler answers 404, naming the model
  const std::shared_ptr<Extra> held = *it;  // kept while /api/delete may drop it from extras_
  Extra& e = *held;
  extras_cv_.wait(lock, [&] { return !e.loading; });
  const auto now = std::chrono::steady_clock::now();
  auto touch = [&] {
    e.last_used = now;
    e.expires = config_.keep_alive_s < 0 ? std::chrono::steady_clock::time_point::max()
                                         : now + std::chrono::seconds(config_.keep_alive_s);
  };
  if (e.sv) {
    touch();
    return e.sv;
  }
  e.loading = true;
  lock.unlock();
  const model::LoadOptions options{.n_threads = config_.scheduler.n_threads};
  auto loaded = [&]() -> Result<std::unique_ptr<model::Model>> {
    if (e.spec.mapping) return model::Model::load(e.spec.mapping, options);
    if (e.spec.open) {
      HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> map, e.spec.open());
      return model::Model::load(map, options);
    }
    return model::Model::load(e.spec.path, options);
  }();
  if (e.spec.on_loaded) e.spec.on_loaded(loaded.status());
  Result<std::shared_ptr<Serving>> made = loaded.ok()
                                              ? make_serving(std::shared_ptr<model::Model>(std::move(*loaded)), e.spec.id)
                                              : Result<std::shared_ptr<Serving>>(loaded.status());
  std::vector<std::shared_ptr<Serving>> evicted;  // released after the lock
  lock.lock();
  e.loading = false;
  if (made.ok()) {
    e.sv = std::move(*made);
    e.bytes = serving_bytes(*e.sv, config_.scheduler);
    touch();
    // Evict the least recently used other extras while over --max-models or --max-memory (the
    // first model stays).
    auto primary_bytes = primary ? serving_bytes(*primary, config_.scheduler) : 0;
    while (true) {
      int count = primary ? 1 : 0;
      uint64_t bytes = primary_bytes;
      Extra* lru = nullptr;
      for (auto& xp : extras_) {
        Extra& x = *xp;
        if (!x.sv) continue;
        ++count;
        bytes += x.bytes;
        if (&x != &e && (lru == nullptr || x.last_used < lru->last_used)) lru = &x;
      }
      const bool over = count > config_.max_models || (config_.max_memory > 0 && bytes > config_.max_memory);
      if (!over || lru == nullptr) break;
      log::info("unloading model '{}' (least recently used; --max-models {}, --max-memory {} MiB)", lru->spec.id,
                config_.max_models, config_.max_memory >> 20);
      evicted.push_back(std::move(lru->sv));
      lru->sv.reset();
    }
  }
  std::shared_ptr<Serving> out = e.sv;
  extras_cv_.notify_all();
  lock.unlock();
  evicted.clear();
  if (!out) {
    error = api_error_from_status(made.status());
    error.message = "model '" + e.spec.id + "' could not be loaded: " + error.message;
    error.param = "model";
  }
  return out;
}

void Server::keep_alive(const std::string& id, int64_t seconds) {
  std::shared_ptr<Serving> unloaded;  // released after the lock (a stream still running keeps its own)
  std::lock_guard lock(extras_mu_);
  for (auto& ep : extras_) {
    Extra& e = *ep;
    if (e.spec.id != id || !e.sv) continue;
    if (seconds == 0) {
      log::info("unloading model '{}' (keep_alive 0)", e.spec.id);
      unloaded = std::move(e.sv);
      e.sv.reset();
      continue;
    }
    e.expires = seconds < 0 ? std::chrono::steady_clock::time_point::max()
                            : std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  }
}

void Server::reap_expired() {
  std::vector<std::shared_ptr<Serving>> unloaded;  // released after the lock
  {
    std::lock_guard lock(extras_mu_);
    const auto now = std::chrono::steady_clock::now();
    for (auto& ep : extras_) {
      Extra& e = *ep;
      if (e.sv && !e.loading && e.expires <= now) {
        log::info("unloading model '{}' (keep-alive)", e.spec.id);
        unloaded.push_back(std::move(e.sv));
        e.sv.reset();
      }
    }
  }
}

HttpHandler Server::with_cors(HttpHandler fn) const {
  if (config_.cors_origins.empty()) return fn;
  return [this, fn = std::move(fn)](const HttpRequest& req) {
    HttpResponse r = fn(req);
    add_cors_headers(config_.cors_origins, req, r);
    return r;
  };
}

void Server::add_routes() {
  http_->set_error_body_hook(error_body_for_status);
  http_->set_access_hook([this](const HttpRequest& req, const AccessRecord& a) {
    // Runs on the thread that ran the handler, so the handler's RequestStats are at hand.
    RequestStats& st = current_request_stats();
    metrics_.record_request(route_label(req.path), a.status, a.seconds);
    log::info("{} prompt_tokens={} completion_tokens={}{}", http::format_access_line(a), st.prompt_tokens,
              st.completion_tokens, st.ttft_s >= 0 ? fmt::format(" ttft={:.3f}s", st.ttft_s) : std::string());
    st = RequestStats{};
  });
  // The API key is checked on the headers alone: a request without a valid key is refused (and
  // its connection closed) before any byte of its body is read. guarded() checks again, for the
  // key's index and quotas.
  http_->set_admission_hook([this](const HttpRequest& req) -> std::optional<HttpResponse> {
    // A CORS preflight carries no key: it is answered here, before the key check.
    if (!config_.cors_origins.empty() && req.method == "OPTIONS") {
      HttpResponse r;
      r.status = 204;
      add_cors_headers(config_.cors_origins, req, r);
      if (!r.headers.empty()) {
        r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        r.headers.emplace_back("Access-Control-Allow-Headers", "authorization, content-type, x-api-key");
        r.headers.emplace_back("Access-Control-Max-Age", "600");
      }
      return r;
    }
    if (!auth_->enabled() || req.path == "/health") return std::nullopt;
    // The chat page holds no data: it loads without a key, and its API calls send one.
    if (config_.web_ui && req.method != "POST" && is_web_ui_path(req.path)) return std::nullopt;
    if (auth_->authenticate(req.header("authorization"), req.header("x-api-key")) >= 0) return std::nullopt;
    HttpResponse r = unauthorized(req);
    add_cors_headers(config_.cors_origins, req, r);
    return r;
  });

  if (config_.web_ui) http_->route("GET", "/|/ui/[A-Za-z0-9._-]+", handle_web_ui);
  if (onnx_) add_onnx_routes(*http_, onnx_, [this](auto fn) { return guarded(false, std::move(fn)); });
  // Serving only ONNX models (no language model configured): healthy once created.
  const bool onnx_only = onnx_ && config_.model_path.empty() && config_.model_mapping == nullptr;
  http_->route("GET", "/health", with_cors([this, onnx_only](const HttpRequest&) {
    if (!onnx_only && !ready_.load(std::memory_order_acquire)) {
      ApiError e{503, "the model is loading", "unavailable_error", "", "model_loading", {}};
      e.headers.emplace_back("Retry-After", "1");
      return error_response(e);
    }
    return json_text_response(R"({"status":"ok"})");
  }));
  http_->route("GET", "/metrics", guarded(false, [this](const HttpRequest&, int) {
                 HttpResponse r;
                 r.content_type = "text/plain; version=0.0.4";
                 engine::SchedulerStats stats;
                 const bool ready = ready_.load(std::memory_order_acquire);
                 if (ready) stats = serving()->scheduler->stats();
                 r.body = metrics_.render(ready ? &stats : nullptr);
                 return r;
               }));
  auto model_json = [](const Serving& sv) {
    return json{{"id", sv.model_id}, {"object", "model"}, {"created", sv.created}, {"owned_by", "hearth"}};
  };
  http_->route("GET", "/v1/models", guarded(true, [this, model_json](const HttpRequest&, int key) {
                 json data = json::array();
                 auto sv = serving();
                 if (key < 0 || auth_->model_allowed(key, sv->model_id)) data.push_back(model_json(*sv));
                 std::lock_guard lock(extras_mu_);
                 for (const auto& e : extras_) {
                   if (key >= 0 && !auth_->model_allowed(key, e->spec.id)) continue;
                   data.push_back(json{{"id", e->spec.id},
                                       {"object", "model"},
                                       {"created", e->sv ? e->sv->created : sv->created},
                                       {"owned_by", "hearth"}});
                 }
                 return json_text_response(json{{"object", "list"}, {"data", data}}.dump());
               }));
  http_->route(
      "GET", "/v1/models/(.+)", guarded(true, [this, model_json](const HttpRequest& req, int key) {
        const std::string id = req.path_params.empty() ? std::string() : req.path_params[0];
        auto sv = serving();
        if (id != sv->model_id || (key >= 0 && !auth_->model_allowed(key, id))) {
          return error_response(ApiError{
              404, "the model '" + id + "' does not exist", "invalid_request_error", "model", "model_not_found", {}});
        }
        return json_text_response(model_json(*sv).dump(-1, ' ', false, json::error_handler_t::replace));
      }));
  http_->route("POST", "/v1/chat/completions",
               model_route([](Serving& sv, const HttpRequest& req, int key) { return handle_completion(sv, req, true, key); }));
  http_->route("POST", "/v1/completions", model_route([](Serving& sv, const HttpRequest& req, int key) {
                 return handle_completion(sv, req, false, key);
               }));
  http_->route("POST", "/v1/embeddings",
               model_route([](Serving& sv, const HttpRequest& req, int key) { return handle_embeddings(sv, req, key); }));
  // llama.cpp-compatible adapter routes; setting the global scales needs a key like any route.
  http_->route("GET", "/lora-adapters",
               guarded(true, [this](const HttpRequest&, int) { return handle_lora_list(*serving()); }));
  http_->route("POST", "/lora-adapters",
               guarded(true, [this](const HttpRequest& req, int) { return handle_lora_set(*serving(), req); }));
  http_->route("POST", "/tokenize",
               guarded(true, [this](const HttpRequest& req, int) { return handle_tokenize(*serving(), req); }));
  http_->route("POST", "/detokenize",
               guarded(true, [this](const HttpRequest& req, int) { return handle_detokenize(*serving(), req); }));

  // The Ollama API (ollama_api.h), on the same keys, limits and engine path.
  http_->route("GET", "/api/version", guarded(false, [](const HttpRequest&, int) { return handle_ollama_version(); }));
  auto list_models = [this](bool running) {
    std::vector<std::shared_ptr<Serving>> loaded{serving()};
    std::vector<UnloadedModel> unloaded;
    std::lock_guard lock(extras_mu_);
    for (const auto& e : extras_) {
      if (e->sv) {
        loaded.push_back(e->sv);
      } else {
        std::error_code ec;
        const uint64_t size = e->spec.mapping      ? e->spec.mapping->size()
                              : e->spec.file_bytes ? e->spec.file_bytes
                                                   : std::filesystem::file_size(e->spec.path, ec);
        unloaded.push_back({e->spec.id, ec ? 0 : size});
      }
    }
    return handle_ollama_tags(loaded, unloaded, running);
  };
  http_->route("GET", "/api/tags",
               guarded(true, [list_models](const HttpRequest&, int) { return list_models(/*running=*/false); }));
  http_->route("GET", "/api/ps",
               guarded(true, [list_models](const HttpRequest&, int) { return list_models(/*running=*/true); }));
  http_->route("POST", "/api/show",
               model_route([](Serving& sv, const HttpRequest& req, int) { return handle_ollama_show(sv, req); }));
  http_->route("POST", "/api/chat",
               model_route([](Serving& sv, const HttpRequest& req, int key) { return handle_ollama_chat(sv, req, key); }));
  http_->route("POST", "/api/generate", model_route([](Serving& sv, const HttpRequest& req, int key) {
                 return handle_ollama_generate(sv, req, key);
               }));
  http_->route("POST", "/api/embed", model_route([](Serving& sv, const HttpRequest& req, int key) {
                 return handle_ollama_embed(sv, req, key, /*legacy=*/false);
               }));
  http_->route("POST", "/api/embeddings", model_route([](Serving& sv, const HttpRequest& req, int key) {
                 return handle_ollama_embed(sv, req, key, /*legacy=*/true);
               }));
  http_->route("POST", "/api/pull",
               guarded(false, [this](const HttpRequest& req, int key) { return handle_pull(req, key); }));
  http_->route("DELETE", "/api/delete",
               guarded(false, [this](const HttpRequest& req, int key) { return handle_delete(req, key); }));
}

bool Server::serves(const std::string& name) {
  if (auto sv = serving(); sv && ollama_name_matches(name, sv->model_id)) return true;
  if (ollama_name_matches(name, config_.model_id)) return true;
  std::lock_guard lock(extras_mu_);
  return std::any_of(extras_.begin(), extras_.end(),
                     [&](const std::shared_ptr<Extra>& e) { return ollama_name_matches(name, e->spec.id); });
}

bool Server::add_extra(ServerConfig::ExtraModel spec) {
  std::lock_guard lock(extras_mu_);
  for (const auto& e : extras_) {
    if (e->spec.id == spec.id) return false;
  }
  auto e = std::make_shared<Extra>();
  e->spec = std::move(spec);
  extras_.push_back(std::move(e));
  return true;
}

HttpResponse Server::handle_pull(const HttpRequest& req, int key) {
  PullRequest p;
  if (auto bad = parse_pull_request(req.body, p)) return *bad;
  if (key >= 0 && !auth_->key(key).models.empty()) {
    return ollama_error(403, "this API key is limited to some models: it may not pull models");
  }
  if (!config_.model_store.pull) return ollama_error(501, "this server does not pull models");
  if (serves(p.name)) return pull_answer(p.stream, ok_status(), {});
  auto pull = config_.model_store.pull;
  const std::string name = p.name;
  auto work = [this, pull, name](const PullProgressFn& progress) -> Status {
    HEARTH_ASSIGN_OR_RETURN(ServerConfig::ExtraModel spec, pull(name, progress));
    const std::string id = spec.id;
    if (add_extra(std::move(spec))) log::info("model '{}' pulled: served from now on", id);
    return ok_status();
  };
  if (!p.stream) return pull_answer(false, work([](const PullProgress&) {}), {});
  return pull_answer(true, ok_status(), std::move(work));
}

HttpResponse Server::handle_delete(const HttpRequest& req, int key) {
  PullRequest p;
  if (auto bad = parse_pull_request(req.body, p)) return *bad;
  if (key >= 0 && !auth_->key(key).models.empty()) {
    return ollama_error(403, "this API key is limited to some models: it may not delete models");
  }
  if (auto sv = serving();
      (sv && ollama_name_matches(p.name, sv->model_id)) || ollama_name_matches(p.name, config_.model_id)) {
    return ollama_error(400, "'" + p.name + "' is the model this server started with; it is served until the server stops");
  }
  bool dropped = false;
  std::shared_ptr<Extra> gone;  // released after the lock (a stream still running keeps its Serving)
  {
    std::lock_guard lock(extras_mu_);
    auto it = std::find_if(extras_.begin(), extras_.end(),
                           [&](const std::shared_ptr<Extra>& e) { return ollama_name_matches(p.name, e->spec.id); });
    if (it != extras_.end()) {
      gone = *it;
      extras_.erase(it);
      dropped = true;
    }
  }
  if (gone) log::info("model '{}' deleted: no longer served", gone->spec.id);
  // Only a store model leaves the store: a file served by path is never touched.
  const bool in_store = !gone || gone->spec.mapping || gone->spec.open;
  Status removed = make_error(ErrorCode::kNotFound, "not a store model");
  if (in_store && config_.model_store.remove) removed = config_.model_store.remove(gone ? gone->spec.id : p.name);
  if (!removed.ok() && removed.code() != ErrorCode::kNotFound) {
    const ApiError e = api_error_from_status(removed);
    return ollama_error(e.status, e.message);
  }
  if (!dropped && !removed.ok()) return ollama_error(404, "model '" + p.name + "' not found");
  return HttpResponse{};  // 200, empty body (as Ollama answers)
}

std::shared_ptr<Serving> Server::serving() const {
  std::lock_guard lock(serving_mu_);
  return serving_;
}

std::shared_ptr<model::Model> Server::current_model() const {
  auto sv = serving();
  return sv ? sv->model : nullptr;
}

Result<std::shared_ptr<Serving>> Server::make_serving(std::shared_ptr<model::Model> model,
                                                      const std::string& model_id) {
  auto sv = std::make_shared<Serving>();
  sv->model_id = model_id;
  sv->limits = config_.limits;
  sv->log_prompts = config_.log_prompts;
  sv->metrics = &metrics_;
  sv->auth = auth_.get();
  sv->model = std::move(model);
  HEARTH_ASSIGN_OR_RETURN(sv->tokenizer, tokenizer::Tokenizer::from_gguf(sv->model->gguf()));
  {
    std::string warning;
    HEARTH_ASSIGN_OR_RETURN(sv->chat_format,
                            config_.chat_template_source.empty()
                                ? engine::ChatFormat::for_gguf(sv->model->gguf(), config_.chat_template, &warning)
                                : engine::ChatFormat::for_model(config_.chat_template_source, config_.chat_template,
                                                                &warning));
    if (!warning.empty()) log::warn("{} (pass --chat-template NAME to choose one)", warning);
  }
  for (const ServerConfig::Lora& l : config_.lora) {
    const std::string& shown = l.mapping ? l.name : l.path;
    HEARTH_ASSIGN_OR_RETURN(auto adapter, l.mapping ? model::LoraAdapter::parse(l.mapping->bytes(), l.name, *sv->model)
                                                    : model::LoraAdapter::load(l.path, *sv->model));
    log::info("LoRA adapter {}: {} weights, scale {}", shown, adapter->weights().size(), l.scale);
    sv->lora.adapters.push_back(std::move(adapter));
    sv->lora.paths.push_back(shown);
    sv->lora.scales.push_back(l.scale);
  }
  HEARTH_ASSIGN_OR_RETURN(sv->scheduler, engine::Scheduler::create(*sv->model, *sv->tokenizer, config_.scheduler));
  sv->created = static_cast<int64_t>(std::time(nullptr));
  log::info("model '{}' loaded: {} slots of {} tokens, chat template '{}' (tool calls: {})", sv->model_id,
            sv->scheduler->n_slots(), sv->scheduler->n_ctx(), sv->chat_format.name(),
            engine::tool_call_syntax_name(sv->chat_format.tool_call_syntax()));
  return sv;
}

Status Server::load() {
  // The weights are repacked on the same threads that will serve (-t).
  const model::LoadOptions options{.n_threads = config_.scheduler.n_threads};
  auto loaded = config_.model_mapping ? model::Model::load(config_.model_mapping, options)
                                      : model::Model::load(config_.model_path, options);
  if (config_.on_model_loaded) config_.on_model_loaded(loaded.status());
  if (!loaded.ok()) return loaded.status();
  HEARTH_ASSIGN_OR_RETURN(auto sv, make_serving(std::shared_ptr<model::Model>(std::move(*loaded)), config_.model_id));
  std::lock_guard lock(serving_mu_);
  serving_ = std::move(sv);
  return ok_status();
}

Status Server::swap_model(std::shared_ptr<model::Model> model, const std::string& model_id) {
  if (!model) return make_error(ErrorCode::kInvalidArgument, "swap_model: no model");
  HEARTH_ASSIGN_OR_RETURN(auto sv, make_serving(std::move(model), model_id));
  std::shared_ptr<Serving> old;
  {
    std::lock_guard lock(serving_mu_);
    old = std::move(serving_);
    serving_ = std::move(sv);
  }
  ready_.store(true, std::memory_order_release);
  // `old` (and its scheduler) goes when the last request that holds it finishes.
  return ok_status();
}

std::optional<engine::SchedulerStats> Server::scheduler_stats() const {
  std::shared_ptr<Serving> sv = serving();
  if (!sv || !sv->scheduler) return std::nullopt;
  return sv->scheduler->stats();
}

Status Server::run() {
  Status serve_status;
  std::thread http_thread([this, &serve_status] { serve_status = http_->serve(); });
  std::thread reaper;
  if (!config_.extra_models.empty()) {
    reaper = std::thread([this] {
      std::unique_lock lock(reaper_mu_);
      while (!stopping_.load()) {
        reaper_cv_.wait_for(lock, std::chrono::milliseconds(250));
        lock.unlock();
        reap_expired();
        lock.lock();
      }
    });
  }
  log::info("listening on {}://{}:{}", config_.http.tls_cert.empty() ? "http" : "https", config_.http.host, port());
  // Without a model in the config (the fleet agent), serve until swap_model gives one.
  const bool has_model = !config_.model_path.empty() || config_.model_mapping != nullptr;
  Status st = has_model ? load() : ok_status();
  if (!st.ok()) {
    http_->stop();
  } else if (has_model) {
    ready_.store(true, std::memory_order_release);
  }
  http_thread.join();
  stopping_.store(true);
  reaper_cv_.notify_all();
  if (reaper.joinable()) reaper.join();
  if (!st.ok()) return st;
  return stopping_.load() ? ok_status() : serve_status;
}

void Server::stop() {
  stopping_.store(true);
  reaper_cv_.notify_all();
  if (http_) http_->stop();
}

}  // namespace hearth::server
