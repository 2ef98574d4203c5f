// ONNX models over HTTP: the Open Inference Protocol v2 (KServe / Triton's REST API, JSON
// tensors) for any ONNX model `hearth serve` loads, and two task endpoints:
//   GET  /v2                          server metadata
//   GET  /v2/health/live, /v2/health/ready
//   GET  /v2/models                   the ONNX models served (hearth's listing)
//   GET  /v2/models/{name}            model metadata: inputs and outputs with datatypes, shapes
//   GET  /v2/models/{name}/ready
//   POST /v2/models/{name}/infer      {"inputs":[{"name","shape","datatype","data"}], "outputs"?}
//   POST /v1/ocr                      the body is a PNG or JPEG: text lines with boxes
//   POST /v1/vad                      the body is an audio file (WAV, FLAC, ...): speech segments
// Sessions are not re-entrant, so each model runs one request at a time (others wait).
// Every request tensor is checked before anything is allocated: datatype, shape (non-negative,
// overflow-safe, at most max_elements), data count equal to the shape's.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hearth/core/mapped_file.h"
#include "hearth/core/status.h"
#include "hearth/server/http_server.h"

namespace hearth::onnx {
class Session;
}
namespace hearth::perception {
class OcrPipeline;
class SileroVad;
}  // namespace hearth::perception

namespace hearth::server {

struct OnnxServiceConfig {
  struct Model {
    std::string name;  // [A-Za-z0-9._-]+
    std::string path;
    // A store model's verified mapping: parsed instead of `path` (which is then for messages),
    // so the bytes run are the bytes that were verified; external data is refused.
    std::shared_ptr<const MappedFile> mapping;
  };
  std::vector<Model> models;
  std::string ocr_models_dir;  // /v1/ocr when set (PaddleOCR's file names)
  std::string vad_model;       // /v1/vad when set
  int n_threads = 0;
  int64_t max_elements = int64_t{1} << 26;  // per request tensor
};

class OnnxService {
 public:
  static Result<std::unique_ptr<OnnxService>> create(const OnnxServiceConfig& config);
  ~OnnxService();

  bool empty() const { return models_.empty() && !ocr_ && !vad_; }

  HttpResponse server_metadata() const;
  HttpResponse list_models() const;
  HttpResponse model_metadata(const std::string& name) const;
  HttpResponse model_ready(const std::string& name) const;
  HttpResponse infer(const std::string& name, const HttpRequest& req);
  HttpResponse ocr(const HttpRequest& req);
  HttpResponse vad(const HttpRequest& req);

 private:
  struct Served {
    std::string name;
    std::string path;
    std::unique_ptr<onnx::Session> session;
    std::mutex mu;
  };
  Served* find(const std::string& name) const;

  OnnxServiceConfig config_;
  std::vector<std::unique_ptr<Served>> models_;
  std::unique_ptr<perception::OcrPipeline> ocr_;
  std::mutex ocr_mu_;
  std::unique_ptr<perception::SileroVad> vad_;
  std::mutex vad_mu_;
};

// Adds the routes above to `http`; `guard` wraps each handler with the server's
// authentication, rate limits and CORS.
void add_onnx_routes(HttpServer& http, std::shared_ptr<OnnxService> service,
                     const std::function<HttpHandler(std::function<HttpResponse(const HttpRequest&, int key)>)>& guard);

}  // namespace hearth::server
