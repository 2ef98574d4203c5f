// `hearth registry serve`: this node's store, read-only, over the OCI Distribution API.
#include <csignal>
#include <cstdio>

#include "command.h"
#include "hearth/registry/registry_server.h"
#include "hearth/store/store.h"

namespace hearth::cli {
namespace {

registry::RegistryServer* g_server = nullptr;

Status run_serve(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument, "--listen '", listen, "': expected HOST:PORT");
  }
  std::string host = listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return make_error(ErrorCode::kInvalidArgument, "--listen '", listen, "': bad port");
  }
  registry::RegistryServer server(store::default_home());
  HEARTH_TRY(server.bind(host, port));
  g_server = &server;
  std::signal(SIGINT, [](int) { if (g_server) g_server->stop(); });
  std::signal(SIGTERM, [](int) { if (g_server) g_server->stop(); });
  std::printf("serving %s read-only at http://%s:%d (peers: hearth pull --mirror http://%s:%d NAME:TAG)\n",
              store::default_home().c_str(), host.c_str(), server.port(), host.c_str(), server.port());
  std::fflush(stdout);
  Status s = server.serve();
  g_server = nullptr;
  return s;
}

void setup(CLI::App& app) {
  auto* sub = app.add_subcommand("registry", "serve the local store to peers");
  sub->require_subcommand(1);
  auto* serve = sub->add_subcommand("serve", "serve the store read-only over the OCI Distribution API v2");
  static std::string listen = "127.0.0.1:5050";
  serve->add_option("--listen", listen, "HOST:PORT (default 127.0.0.1:5050; 0.0.0.0:5050 for the LAN; port 0 picks one)");
  serve->callback([] { Status s = run_serve(listen); set_exit_code(s.ok() ? 0 : report_error(s)); });
}

CommandRegistrar reg(330, setup);

}  // namespace
}  // namespace hearth::cli
