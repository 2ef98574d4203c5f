// `hearth registry serve`: this node's store, read-only, over the OCI Distribution API.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "command.h"
#include "hearth/core/log.h"
#include "hearth/registry/registry_server.h"
#include "hearth/store/store.h"
#include "http_options.h"
#include "stop_signals.h"

namespace hearth::cli {
namespace {

struct RegistryServeOptions {
  std::string listen = "127.0.0.1:5050";
  http::HttpServerOptions http;
  uint64_t max_body_mib = 1;  // the mirror takes no uploads: bodies are refused anyway
};

Status run_serve(RegistryServeOptions& o) {
  const std::string& listen = o.listen;
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument, "--listen '{}': expected HOST:PORT", listen);
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return make_error(ErrorCode::kInvalidArgument, "--listen '{}': bad port", listen);
  }
  if (o.max_body_mib == 0 || o.max_body_mib > (uint64_t{1} << 20)) {
    return make_error(ErrorCode::kInvalidArgument, "--max-body must be 1 to 1048576 (MiB)");
  }
  o.http.max_body_bytes = o.max_body_mib << 20;
  // A server logs its access lines by default (HEARTH_LOG or -v still decide when given).
  if (std::getenv("HEARTH_LOG") == nullptr && log::level() > log::Level::kInfo) log::set_level(log::Level::kInfo);
  StopSignals signals;  // before the server's threads start

  registry::RegistryServer server(store::default_home(), o.http);
  HEARTH_TRY(server.bind(host, port));
  std::printf("serving %s read-only at http://%s:%d (peers: hearth pull --mirror http://%s:%d NAME:TAG)\n",
              store::default_home().c_str(), host.c_str(), server.port(), host.c_str(), server.port());
  std::fflush(stdout);
  return signals.run([&] { return server.serve(); }, [&] { server.stop(); });
}

void setup(CLI::App& app) {
  auto o = std::make_shared<RegistryServeOptions>();
  auto* sub = app.add_subcommand("registry", "serve the local store to peers");
  sub->require_subcommand(1);
  auto* serve = sub->add_subcommand("serve", "serve the store read-only over the OCI Distribution API v2");
  serve->add_option("--listen", o->listen,
                    "HOST:PORT (default 127.0.0.1:5050; 0.0.0.0:5050 for the LAN; port 0 picks one)");
  add_http_limit_options(*serve, o->http, o->max_body_mib);
  serve->callback([o] {
    Status s = run_serve(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(330, setup);

}  // namespace
}  // namespace hearth::cli
