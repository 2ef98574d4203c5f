// `hearth ps`, `hearth show MODEL` and `hearth stop MODEL`: what a running `hearth serve` has
// loaded, asked over its Ollama routes (/api/ps, /api/show, /api/generate with keep_alive 0), as
// `ollama ps` / `show` / `stop` ask theirs.
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "command.h"
#include "hearth/registry/http_client.h"

namespace hearth::cli {
namespace {

using json = nlohmann::json;

struct ServerOptions {
  std::string host;  // empty: $HEARTH_HOST, then http://127.0.0.1:8080
  std::string api_key;
  bool json_out = false;
};

std::string server_url(const ServerOptions& o) {
  std::string h = o.host;
  if (h.empty()) {
    const char* env = std::getenv("HEARTH_HOST");
    h = env != nullptr && *env != '\0' ? env : "http://127.0.0.1:8080";
  }
  if (h.find("://") == std::string::npos) h = "http://" + h;
  while (!h.empty() && h.back() == '/') h.pop_back();
  return h;
}

Result<json> call(const ServerOptions& o, const std::string& method, const std::string& path, const std::string& body) {
  registry::HttpClient client;
  registry::HttpRequest req;
  req.method = method;
  req.url = server_url(o) + path;
  req.body = body;
  req.connect_timeout_seconds = 5;
  req.redirects = registry::Redirects::kNone;
  if (!body.empty()) req.headers.push_back("Content-Type: application/json");
  if (!o.api_key.empty()) req.headers.push_back("Authorization: Bearer " + o.api_key);
  auto r = client.send(req);
  if (!r.ok()) {
    return make_error(ErrorCode::kUnavailable, "no hearth server answers at {} ({}); start one with 'hearth serve', "
                      "or pass --host / set HEARTH_HOST", server_url(o), r.status().message());
  }
  json j = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (r->status != 200) {
    std::string msg = j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>()
                                                                                    : r->body.substr(0, 200);
    return make_error(r->status == 404 ? ErrorCode::kNotFound : ErrorCode::kFailedPrecondition, "{}: {} {}", req.url,
                      r->status, msg);
  }
  if (!j.is_object()) return make_error(ErrorCode::kDataLoss, "{}: the answer is not a JSON object", req.url);
  return j;
}

std::string human_size(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.1f} GB", static_cast<double>(b) / (1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f} MB", static_cast<double>(b) / (1ull << 20));
  return fmt::format("{:.1f} KB", static_cast<double>(b) / 1024.0);
}

Status run_ps(const ServerOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(json j, call(o, "GET", "/api/ps", ""));
  if (o.json_out) {
    std::printf("%s\n", j.dump(2).c_str());
    return ok_status();
  }
  std::printf("%-32s %-10s %-10s %-8s %s\n", "NAME", "SIZE", "QUANT", "CONTEXT", "PROCESSOR");
  for (const json& m : j.value("models", json::array())) {
    const json d = m.value("details", json::object());
    std::printf("%-32s %-10s %-10s %-8s %s\n", m.value("name", "?").c_str(),
                human_size(m.value("size", uint64_t{0})).c_str(), d.value("quantization_level", "").c_str(),
                std::to_string(m.value("context_length", 0)).c_str(), "100% CPU");
  }
  return ok_status();
}

Status run_show(const ServerOptions& o, const std::string& model) {
  HEARTH_ASSIGN_OR_RETURN(json j, call(o, "POST", "/api/show", json{{"model", model}}.dump()));
  if (o.json_out) {
    std::printf("%s\n", j.dump(2).c_str());
    return ok_status();
  }
  const json d = j.value("details", json::object());
  const json info = j.value("model_info", json::object());
  const std::string arch = info.value("general.architecture", d.value("family", ""));
  std::printf("  Model\n");
  std::printf("    %-20s %s\n", "architecture", arch.c_str());
  std::printf("    %-20s %s\n", "parameters", d.value("parameter_size", "").c_str());
  std::printf("    %-20s %s\n", "quantization", d.value("quantization_level", "").c_str());
  for (const char* k : {"context_length", "embedding_length", "block_count"}) {
    const std::string key = arch + "." + k;
    if (info.contains(key)) std::printf("    %-20s %s\n", k, info[key].dump().c_str());
  }
  std::printf("\n  Capabilities\n");
  for (const json& c : j.value("capabilities", json::array())) std::printf("    %s\n", c.get<std::string>().c_str());
  const std::string tmpl = j.value("template", "");
  std::printf("\n  Chat template\n    %s\n", tmpl.empty() ? "(none: the built-in formats)"
                                                    : fmt::format("{} bytes (Jinja)", tmpl.size()).c_str());
  return ok_status();
}

// Names in /api/ps.
Result<std::vector<std::string>> running_models(const ServerOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(json j, call(o, "GET", "/api/ps", ""));
  std::vector<std::string> names;
  for (const json& m : j.value("models", json::array())) names.push_back(m.value("name", ""));
  return names;
}

bool listed(const std::vector<std::string>& names, const std::string& model) {
  for (const std::string& n : names) {
    if (n == model || n == model + ":latest") return true;
  }
  return false;
}

// Unloads a model now: a request with keep_alive 0, as `ollama stop` does.
Status run_stop(const ServerOptions& o, const std::string& model) {
  HEARTH_ASSIGN_OR_RETURN(std::vector<std::string> before, running_models(o));
  if (!listed(before, model)) {
    return make_error(ErrorCode::kNotFound, "'{}' is not loaded on {} (hearth ps lists what is)", model, server_url(o));
  }
  HEARTH_TRY(call(o, "POST", "/api/generate", json{{"model", model}, {"keep_alive", 0}}.dump()).status());
  HEARTH_ASSIGN_OR_RETURN(std::vector<std::string> after, running_models(o));
  if (listed(after, model)) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "'{}' is the server's first model, which stays loaded for the server's life (stop the server "
                      "to unload it)",
                      model);
  }
  std::printf("stopped %s\n", model.c_str());
  return ok_status();
}

void add_server_options(CLI::App* sub, ServerOptions& o) {
  sub->add_option("--host", o.host, "the server (default: $HEARTH_HOST, then http://127.0.0.1:8080)");
  sub->add_option("--api-key", o.api_key, "the server's API key, if it needs one");
  sub->add_flag("--json", o.json_out, "print the server's JSON answer");
}

void setup(CLI::App& app) {
  {
    static ServerOptions o;
    auto* sub = app.add_subcommand("ps", "list the models a running hearth serve has loaded");
    add_server_options(sub, o);
    sub->callback([] {
      Status s = run_ps(o);
      set_exit_code(s.ok() ? 0 : report_error(s));
    });
  }
  {
    static ServerOptions o;
    static std::string model;
    auto* sub = app.add_subcommand("show", "describe a model that a running hearth serve serves");
    sub->add_option("model", model, "the model's name (as /api/tags lists it)")->required();
    add_server_options(sub, o);
    sub->callback([] {
      Status s = run_show(o, model);
      set_exit_code(s.ok() ? 0 : report_error(s));
    });
  }
}

CommandRegistrar reg(21, setup);

void setup_stop(CLI::App& app) {
  static ServerOptions o;
  static std::string model;
  auto* sub = app.add_subcommand("stop", "unload a model from a running hearth serve (keep_alive 0)");
  sub->add_option("model", model, "the model's name (as hearth ps lists it)")->required();
  add_server_options(sub, o);
  sub->callback([] {
    Status s = run_stop(o, model);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg_stop(22, setup_stop);

}  // namespace
}  // namespace hearth::cli
