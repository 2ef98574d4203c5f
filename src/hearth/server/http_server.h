// The server module's names for the shared HTTP adapter (src/hearth/http/http_server.h), so
// the handlers read as before.
#pragma once

#include "hearth/http/http_server.h"

namespace hearth::server {

using http::AccessHook;
using http::AccessRecord;
using http::AdmissionHook;
using http::ErrorBodyHook;
using http::HttpHandler;
using http::HttpRequest;
using http::HttpResponse;
using http::HttpServer;
using http::HttpServerOptions;
using http::StreamWriter;

}  // namespace hearth::server
