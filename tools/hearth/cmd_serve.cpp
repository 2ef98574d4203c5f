// `hearth serve`: the OpenAI-compatible HTTP server (see src/hearth/server/server.h).
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <thread>

#include "command.h"
#include "common_options.h"
#include "hearth/core/atomic_file.h"
#include "hearth/core/log.h"
#include "hearth/jinja/template.h"
#include "hearth/registry/model_transfer.h"
#include "hearth/server/server.h"
#include "hearth/store/store.h"
#include "hearth/trust/model_resolver.h"
#include "http_options.h"
#include "model_arg.h"
#include "stop_signals.h"

namespace hearth::cli {
namespace {

struct ServeOptions {
  ModelOptions m;
  server::ServerConfig config;
  std::vector<std::string> api_keys;
  std::string api_key_file;
  KvOptions kv;
  uint64_t max_body_mib = 8;
  std::vector<std::string> lora;
  std::string chat_template_file;
  std::vector<std::string> more_models;
  std::string keep_alive;
  uint64_t max_memory_mib = 0;
  bool models_from_store = false;
  bool no_pull = false;
  std::vector<std::string> onnx;  // NAME=PATH or PATH (--onnx)
};

bool is_onnx_path(const std::string& p) { return p.size() > 5 && p.compare(p.size() - 5, 5, ".onnx") == 0; }

// --onnx NAME=PATH, or PATH (named by its file name without ".onnx").
server::OnnxServiceConfig::Model onnx_model_arg(const std::string& a) {
  const auto eq = a.find('=');
  if (eq != std::string::npos && !is_onnx_path(a.substr(0, eq))) return {a.substr(0, eq), a.substr(eq + 1), nullptr};
  std::string stem = std::filesystem::path(a).filename().string();
  if (is_onnx_path(stem)) stem.resize(stem.size() - 5);
  return {stem, a, nullptr};
}

// An extra model from a resolved argument: verified already, loaded on its first request.
server::ServerConfig::ExtraModel extra_model(const ResolvedModelArg& arg) {
  server::ServerConfig::ExtraModel m;
  m.path = arg.path;
  m.mapping = arg.mapping;
  m.id = !arg.reference.empty() ? arg.reference : server::model_id_for_path(arg.path);
  m.on_loaded = [arg](const Status& s) { record_load(arg, s); };
  return m;
}

// A store model that is verified only when its first request loads it (--models-from-store):
// the trust policy is applied then, as for a model named on the command line.
server::ServerConfig::ExtraModel lazy_store_model(const std::string& ref, uint64_t bytes, bool allow_unsigned) {
  auto resolved = std::make_shared<ResolvedModelArg>();
  server::ServerConfig::ExtraModel m;
  m.id = ref;
  m.file_bytes = bytes;
  m.open = [ref, allow_unsigned, resolved]() -> Result<std::shared_ptr<const MappedFile>> {
    HEARTH_ASSIGN_OR_RETURN(*resolved, resolve_model_arg(ref, "serve", allow_unsigned));
    log::info("loading {}", resolved->display);
    return map_model(*resolved);
  };
  m.on_loaded = [resolved](const Status& s) {
    if (!resolved->display.empty()) record_load(*resolved, s);
  };
  return m;
}

// A model named by a client (/api/pull, /api/delete): a store reference, never a file path.
Result<store::Reference> client_reference(const std::string& name) {
  if (trust::looks_like_local_path(name)) {
    return make_error(ErrorCode::kInvalidArgument, "'{}' is not a store reference (name:tag); clients cannot name files",
                      name);
  }
  return store::parse_reference(name);
}

// /api/pull: a store model, pulled first from the configured registries when the store lacks it
// (verified by the pull under the trust policy), then verified again as every served model is.
Result<server::ServerConfig::ExtraModel> pull_for_client(const std::string& name, bool allow_unsigned,
                                                         const server::PullProgressFn& progress) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, client_reference(name));
  const std::string home = store::default_home();
  {
    HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(home));
    if (!st.resolve(ref).ok()) {
      registry::PullOptions opts;
      opts.sources = registry::configured_sources(home);
      if (opts.sources.empty()) {
        return make_error(ErrorCode::kNotFound,
                          "model '{}' is not in the store, and no registry is configured to pull it from "
                          "($HEARTH_MIRRORS, or {}/mirrors)",
                          ref.to_string(), home);
      }
      opts.allow_unsigned = allow_unsigned;
      opts.remote.on_blob_progress = [&progress](const store::Digest& d, uint64_t done, uint64_t total) {
        progress(server::PullProgress{"pulling " + std::string(d.hex().substr(0, 12)), d.str(), total, done});
      };
      progress(server::PullProgress{"pulling manifest", "", 0, 0});
      HEARTH_ASSIGN_OR_RETURN(registry::PullResult r, registry::pull_model(st, ref, opts));
      log::info("pulled {} from {} for a client: {}", ref.to_string(), r.source, r.verification);
    }
  }
  progress(server::PullProgress{"verifying sha256 digest", "", 0, 0});
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(ref.to_string(), "serve", allow_unsigned));
  log::info("serving {} (pulled by a client)", arg.display);
  return extra_model(arg);
}

// /api/delete: removes the store reference (blobs stay until `hearth gc`).
Status remove_for_client(const std::string& name) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, client_reference(name));
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(store::default_home()));
  if (!st.resolve(ref).ok()) return make_error(ErrorCode::kNotFound, "model '{}' not found", name);
  HEARTH_TRY(st.remove(ref));
  log::info("removed {} from the store for a client (run 'hearth gc' to free space)", ref.to_string());
  return ok_status();
}

// "5m", "1h30m", "90s", "300" (seconds), "-1" (forever): seconds, -1 for forever.
Result<int64_t> parse_duration_seconds(const std::string& text) {
  if (text.empty()) return int64_t{-1};
  if (text.starts_with('-')) return int64_t{-1};
  int64_t total = 0, number = 0;
  bool digits = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      if (number > (int64_t{1} << 40)) return make_error(ErrorCode::kInvalidArgument, "--keep-alive {} is too long", text);
      number = number * 10 + (c - '0');
      digits = true;
    } else if ((c == 'h' || c == 'm' || c == 's') && digits) {
      total += number * (c == 'h' ? 3600 : c == 'm' ? 60 : 1);
      number = 0;
      digits = false;
    } else {
      return make_error(ErrorCode::kInvalidArgument, "--keep-alive must be a duration like 5m, 1h30m, 90s or -1, not '{}'",
                        text);
    }
  }
  return total + number;
}

Status serve(ServeOptions& o) {
  // A server logs its access lines by default (HEARTH_LOG or -v still decide when given).
  if (std::getenv("HEARTH_LOG") == nullptr && log::level() > log::Level::kInfo) log::set_level(log::Level::kInfo);
  std::vector<store::ListEntry> stored;
  if (o.models_from_store) {
    HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(store::default_home()));
    HEARTH_ASSIGN_OR_RETURN(stored, st.list());
    std::erase_if(stored, [](const store::ListEntry& e) { return e.tag.empty(); });
  }
  server::ServerConfig& c = o.config;
  // ONNX models: --onnx, and model arguments that end in ".onnx" (served over /v2).
  for (const std::string& a : o.onnx) c.onnx.models.push_back(onnx_model_arg(a));
  // A name that is not a file is a store reference: verified against the trust policy now, and
  // served from the verified mapping.
  for (auto& m : c.onnx.models) {
    if (std::filesystem::exists(m.path)) continue;
    HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg r, resolve_model_arg(m.path, "serve", o.m.allow_unsigned));
    record_load(r, ok_status());
    m.mapping = r.mapping;
    m.path = r.display;
  }
  if (is_onnx_path(o.m.model)) {
    c.onnx.models.push_back(onnx_model_arg(o.m.model));
    o.m.model.clear();
  }
  std::erase_if(o.more_models, [&](const std::string& m) {
    if (!is_onnx_path(m)) return false;
    c.onnx.models.push_back(onnx_model_arg(m));
    return true;
  });
  const bool onnx_given = !c.onnx.models.empty() || !c.onnx.ocr_models_dir.empty() || !c.onnx.vad_model.empty();
  // With --models-from-store and no model named anywhere, the store's first model is the first.
  HEARTH_ASSIGN_OR_RETURN(std::string first, chosen_model_arg(o.m.model));
  if (first.empty() && !stored.empty()) first = stored.front().name + ":" + stored.front().tag;
  ResolvedModelArg arg;
  // Only ONNX models: no language model is needed (its routes answer 503).
  if (!(onnx_given && first.empty())) {
    HEARTH_ASSIGN_OR_RETURN(arg, resolve_model_arg(first, "serve", o.m.allow_unsigned));
  }
  HEARTH_ASSIGN_OR_RETURN(const std::vector<LoraSpec> lora, parse_lora_specs(o.lora));
  // A store adapter is verified here; the server parses it from the mapping that was hashed.
  for (const LoraSpec& l : lora) {
    HEARTH_ASSIGN_OR_RETURN(server::ServerConfig::Lora spec, resolve_server_lora(l, o.m.allow_unsigned));
    c.lora.push_back(std::move(spec));
  }
  // More models: verified now (a store reference is checked before the server starts), loaded on
  // their first request.
  for (const std::string& more : o.more_models) {
    HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg extra, resolve_model_arg(more, "serve", o.m.allow_unsigned));
    c.extra_models.push_back(extra_model(extra));
  }
  for (const store::ListEntry& e : stored) {
    const std::string ref = e.name + ":" + e.tag;
    const bool named = ref == arg.reference || std::any_of(c.extra_models.begin(), c.extra_models.end(),
                                                            [&](const auto& m) { return m.id == ref; });
    if (!named) c.extra_models.push_back(lazy_store_model(ref, e.size, o.m.allow_unsigned));
  }
  if (!o.no_pull) {
    c.model_store.pull = [allow = o.m.allow_unsigned](const std::string& name, const server::PullProgressFn& p) {
      return pull_for_client(name, allow, p);
    };
    c.model_store.remove = remove_for_client;
  }
  HEARTH_ASSIGN_OR_RETURN(c.keep_alive_s, parse_duration_seconds(o.keep_alive));
  c.max_memory = o.max_memory_mib << 20;
  c.model_path = arg.path;
  c.model_mapping = arg.mapping;
  c.on_model_loaded = [arg](const Status& s) { record_load(arg, s); };
  // A store model's blob is named by its digest: call it by its reference ("acme/stories:v1").
  if (c.model_id.empty() && !arg.reference.empty()) c.model_id = arg.reference;
  if (!arg.path.empty() || arg.mapping) log::info("serving {}", arg.display);
  for (const auto& m : c.onnx.models) log::info("serving ONNX model {} ({}) at /v2/models/{}", m.name, m.path, m.name);
  for (const std::string& k : o.api_keys) {
    if (k.empty()) return make_error(ErrorCode::kInvalidArgument, "--api-key must not be empty");
    c.keys.push_back(server::ApiKey{k, {}, 0, 0, {}});
  }
  if (!o.api_key_file.empty()) {
    HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(o.api_key_file, 16 << 20));
    HEARTH_ASSIGN_OR_RETURN(auto keys, server::parse_api_key_file(text, o.api_key_file));
    if (keys.empty()) return make_error(ErrorCode::kInvalidArgument, "{}: no keys in the file", o.api_key_file);
    c.keys.insert(c.keys.end(), keys.begin(), keys.end());
  }
  if (!o.chat_template_file.empty()) {
    if (!c.chat_template.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "--chat-template and --chat-template-file exclude each other");
    }
    HEARTH_ASSIGN_OR_RETURN(c.chat_template_source, read_file(o.chat_template_file, jinja::kMaxTemplateBytes));
  }
  HEARTH_ASSIGN_OR_RETURN(c.scheduler.kv_type, parse_kv_types(o.kv));
  c.scheduler.kv_limit_bytes = o.kv.limit_mib << 20;
  if (o.max_body_mib == 0 || o.max_body_mib > (uint64_t{1} << 20)) {
    return make_error(ErrorCode::kInvalidArgument, "--max-body must be 1 to 1048576 (MiB), not {}", o.max_body_mib);
  }
  c.http.max_body_bytes = o.max_body_mib << 20;
  // Every generating or queued request holds a worker until it is answered.
  const auto min_workers = static_cast<uint32_t>(std::max(c.scheduler.n_slots, 1) + 2);
  if (c.http.worker_threads < min_workers) c.http.worker_threads = min_workers;

  StopSignals signals;  // before the server's threads start

  HEARTH_ASSIGN_OR_RETURN(auto srv, server::Server::create(c));
  return signals.run([&] { return srv->run(); }, [&] { srv->stop(); });
}

void setup(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  auto& c = o->config;
  auto* sub = app.add_subcommand("serve", "serve a model over an OpenAI-compatible HTTP API");
  add_model_options(sub, o->m);
  sub->add_option("more", o->more_models, "more models to serve (each loaded on its first request)");
  sub->add_option("--max-models", c.max_models, "models loaded at once, the first included (LRU eviction)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--max-memory", o->max_memory_mib, "MiB of weights + KV caches loaded at once (0: no limit)");
  sub->add_flag("--models-from-store", o->models_from_store,
                "also serve every tagged model in the store (each verified and loaded on its first request)");
  sub->add_flag("--no-pull", o->no_pull, "refuse /api/pull and /api/delete (clients cannot change the store)");
  sub->add_option("--onnx", o->onnx, "serve an ONNX model over the Open Inference Protocol (/v2): NAME=FILE.onnx or FILE.onnx (repeatable)");
  sub->add_option("--ocr-models", c.onnx.ocr_models_dir, "serve POST /v1/ocr with the PP-OCR models in DIR");
  sub->add_option("--vad-model", c.onnx.vad_model, "serve POST /v1/vad with this Silero VAD model");
  sub->add_option("--onnx-threads", c.onnx.n_threads, "threads per ONNX inference (default: every core)")->check(CLI::Range(0, 1024));
  sub->add_option("--keep-alive", o->keep_alive,
                  "how long an extra model stays loaded after its last request (5m, 1h, -1: until evicted)");
  sub->add_option("--host", c.http.host, "address to listen on")->capture_default_str();
  sub->add_option("--port", c.http.port, "port (0: any free port)")->capture_default_str();
  sub->add_option("--parallel,--np", c.scheduler.n_slots, "parallel slots (sequences batched together)")
      ->capture_default_str();
  add_ctx_option(sub, c.scheduler.n_ctx, "context size per slot (default: min(4096, the model's))");
  sub->add_option("-b,--batch-size", c.scheduler.n_batch, "most tokens per forward pass")->capture_default_str();
  sub->add_flag("--draft-ngram", c.scheduler.draft_ngram,
                "speculative decoding with prompt-lookup drafts (greedy output unchanged; see docs/server.md)");
  sub->add_option("--draft-max", c.scheduler.draft_max, "most draft tokens checked per slot and step")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  add_threads_option(sub, c.scheduler.n_threads);
  sub->add_option("--max-queue", c.scheduler.max_queue, "queued requests beyond the slots before 503")
      ->capture_default_str();
  sub->add_option("--max-tokens", c.limits.max_tokens, "cap on a request's max_tokens (-1: the context)")
      ->capture_default_str();
  sub->add_option("--max-n", c.limits.max_n, "cap on a request's n")->capture_default_str();
  sub->add_option("--alias", c.model_id, "model id reported by the API (default: the file name)");
  sub->add_option("--chat-template", c.chat_template,
                  "chat format: plain, llama2, llama3, chatml, mistral, zephyr, gemma, phi3 (default: from the model)");
  sub->add_option("--chat-template-file", o->chat_template_file,
                  "a Jinja chat template to use instead of the model's own (as tokenizer.chat_template)");
  sub->add_option("--cors-origin", c.cors_origins,
                  "let browser pages from ORIGIN (e.g. http://localhost:3000, or *) call the API (repeatable; "
                  "default: off)");
  sub->add_option("--api-key", o->api_keys, "API key clients must send (repeatable)");
  sub->add_option("--api-key-file", o->api_key_file, "file of keys, one per line: KEY [models=a,b] [rpm=N] [tpm=N]");
  sub->add_flag("--insecure-no-auth", c.insecure_no_auth, "allow a non-loopback --host without an API key");
  sub->add_option("--tls-cert", c.http.tls_cert, "TLS certificate (PEM); with --tls-key serves HTTPS");
  sub->add_option("--tls-key", c.http.tls_key, "TLS private key (PEM)");
  add_http_limit_options(*sub, c.http, o->max_body_mib);
  add_lora_option(sub, o->lora,
                  "LoRA adapter FILE[:SCALE] (scale default 1; repeatable); ids 0, 1, ... in this order "
                  "(GET/POST /lora-adapters, a request's \"lora\")");
  sub->add_flag("--log-prompts", c.log_prompts, "log prompts and completions (off: never logged)");
  sub->add_flag_callback("--no-webui", [o] { o->config.web_ui = false; }, "do not serve the chat page at /");
  add_kv_options(sub, o->kv);
  sub->callback([o] {
    Status s = serve(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(20, setup);

}  // namespace
}  // namespace hearth::cli
