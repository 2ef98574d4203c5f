#include "hearth/server/oip_api.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <functional>

#include "hearth/core/checked_math.h"
#include "hearth/kernels/fp16.h"
#include "hearth/onnx/loader.h"
#include "hearth/onnx/session.h"
#include "hearth/perception/audio.h"
#include "hearth/perception/image.h"
#include "hearth/perception/ocr.h"
#include "hearth/perception/vad.h"

namespace hearth::server {
namespace {

using json = nlohmann::ordered_json;
using onnx::DType;
using onnx::Tensor;

HttpResponse json_response(int status, const json& j) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}
// The protocol's error shape: {"error": "..."}.
HttpResponse oip_error(int status, const std::string& message) { return json_response(status, json{{"error", message}}); }
HttpResponse oip_error(const Status& s) {
  int status = 400;
  switch (s.code()) {
    case ErrorCode::kNotFound: status = 404; break;
    case ErrorCode::kResourceExhausted: status = 413; break;
    case ErrorCode::kUnimplemented: status = 501; break;
    case ErrorCode::kInternal:
    case ErrorCode::kIo: status = 500; break;
    default: break;
  }
  return oip_error(status, s.message());
}

// The protocol's datatype names.
const char* oip_datatype(DType t) {
  switch (t) {
    case DType::kBool: return "BOOL";
    case DType::kUint8: return "UINT8";
    case DType::kUint16: return "UINT16";
    case DType::kUint32: return "UINT32";
    case DType::kUint64: return "UINT64";
    case DType::kInt8: return "INT8";
    case DType::kInt16: return "INT16";
    case DType::kInt32: return "INT32";
    case DType::kInt64: return "INT64";
    case DType::kFloat16: return "FP16";
    case DType::kFloat: return "FP32";
    case DType::kDouble: return "FP64";
    case DType::kBFloat16: return "BF16";
    default: return "BYTES";
  }
}
DType from_oip_datatype(const std::string& s) {
  for (DType t : {DType::kBool, DType::kUint8, DType::kUint16, DType::kUint32, DType::kUint64, DType::kInt8, DType::kInt16, DType::kInt32,
                  DType::kInt64, DType::kFloat16, DType::kFloat, DType::kDouble, DType::kBFloat16}) {
    if (s == oip_datatype(t)) return t;
  }
  return DType::kUndefined;
}

json shape_json(const onnx::ValueInfo& v) {
  json s = json::array();
  for (int64_t d : v.dims) s.push_back(d);  // -1: dynamic, as the protocol writes it
  return s;
}

json tensor_metadata(const onnx::ValueInfo& v) {
  return json{{"name", v.name}, {"datatype", v.dtype == DType::kUndefined ? "BYTES" : oip_datatype(v.dtype)}, {"shape", shape_json(v)}};
}

// Flattens JSON data (flat, or nested row-major arrays) into `out`, at most `limit` leaves.
Status flatten(const json& j, std::vector<const json*>& out, size_t limit, int depth) {
  if (depth > static_cast<int>(onnx::kMaxRank) + 1) return make_error(ErrorCode::kInvalidArgument, "data nests deeper than any tensor");
  if (j.is_array()) {
    for (const auto& e : j) HEARTH_TRY(flatten(e, out, limit, depth + 1));
    return ok_status();
  }
  if (out.size() >= limit) return make_error(ErrorCode::kInvalidArgument, "data has more elements than the shape");
  out.push_back(&j);
  return ok_status();
}

template <typename T>
Status fill_ints(Tensor& t, const std::vector<const json*>& leaves, const std::string& name) {
  T* d = t.data<T>();
  for (size_t i = 0; i < leaves.size(); ++i) {
    const json& v = *leaves[i];
    if (!v.is_number_integer()) return make_error(ErrorCode::kInvalidArgument, "input '{}': element {} is not an integer", name, i);
    if constexpr (std::is_unsigned_v<T>) {
      if (v.is_number_unsigned() ? v.get<uint64_t>() > std::numeric_limits<T>::max() : v.get<int64_t>() < 0 ||
                                                                                          static_cast<uint64_t>(v.get<int64_t>()) > std::numeric_limits<T>::max()) {
        return make_error(ErrorCode::kInvalidArgument, "input '{}': element {} is out of range for {}", name, i, onnx::dtype_name(t.dtype()));
      }
      d[i] = static_cast<T>(v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>()));
    } else {
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
        return make_error(ErrorCode::kInvalidArgument, "input '{}': element {} is out of range for {}", name, i, onnx::dtype_name(t.dtype()));
      }
      const int64_t x = v.get<int64_t>();
      if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) {
        return make_error(ErrorCode::kInvalidArgument, "input '{}': element {} is out of range for {}", name, i, onnx::dtype_name(t.dtype()));
      }
      d[i] = static_cast<T>(x);
    }
  }
  return ok_status();
}

Result<Tensor> tensor_from_json(const json& in, int64_t max_elements) {
  if (!in.is_object()) return make_error(ErrorCode::kInvalidArgument, "each input must be an object");
  const auto name_it = in.find("name");
  if (name_it == in.end() || !name_it->is_string()) return make_error(ErrorCode::kInvalidArgument, "an input has no \"name\"");
  const std::string name = name_it->get<std::string>();
  const auto dt_it = in.find("datatype");
  if (dt_it == in.end() || !dt_it->is_string()) return make_error(ErrorCode::kInvalidArgument, "input '{}' has no \"datatype\"", name);
  const DType dt = from_oip_datatype(dt_it->get<std::string>());
  if (dt == DType::kUndefined) {
    return make_error(ErrorCode::kInvalidArgument, "input '{}': datatype '{}' is not supported", name, dt_it->get<std::string>());
  }
  const auto sh_it = in.find("shape");
  if (sh_it == in.end() || !sh_it->is_array()) return make_error(ErrorCode::kInvalidArgument, "input '{}' has no \"shape\" array", name);
  if (sh_it->size() > onnx::kMaxRank) return make_error(ErrorCode::kInvalidArgument, "input '{}': rank {} is above {}", name, sh_it->size(), onnx::kMaxRank);
  onnx::Shape shape;
  int64_t n = 1;
  for (const auto& d : *sh_it) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) return make_error(ErrorCode::kInvalidArgument, "input '{}': shape entries must be non-negative integers", name);
    shape.push_back(d.get<int64_t>());
    auto m = checked_mul<int64_t>(n, shape.back());
    if (!m || *m > max_elements) {
      return make_error(ErrorCode::kInvalidArgument, "input '{}': shape {} has more than {} elements", name, onnx::shape_string(shape), max_elements);
    }
    n = *m;
  }
  if (in.contains("parameters") && in["parameters"].is_object() && in["parameters"].contains("binary_data_size")) {
    return make_error(ErrorCode::kUnimplemented, "input '{}': the binary tensor extension is not supported; send JSON data", name);
  }
  const auto data_it = in.find("data");
  if (data_it == in.end()) return make_error(ErrorCode::kInvalidArgument, "input '{}' has no \"data\"", name);
  std::vector<const json*> leaves;
  HEARTH_TRY(flatten(*data_it, leaves, static_cast<size_t>(n), 0).with_context(fmt::format("input '{}'", name)));
  if (static_cast<int64_t>(leaves.size()) != n) {
    return make_error(ErrorCode::kInvalidArgument, "input '{}': shape {} needs {} elements, data has {}", name, onnx::shape_string(shape), n, leaves.size());
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor t, Tensor::make(dt, shape));
  switch (dt) {
    case DType::kFloat:
    case DType::kDouble:
    case DType::kFloat16:
    case DType::kBFloat16:
      for (size_t i = 0; i < leaves.size(); ++i) {
        if (!leaves[i]->is_number()) return make_error(ErrorCode::kInvalidArgument, "input '{}': element {} is not a number", name, i);
        const double v = leaves[i]->get<double>();
        if (dt == DType::kFloat) t.data<float>()[i] = static_cast<float>(v);
        else if (dt == DType::kDouble) t.data<double>()[i] = v;
        else if (dt == DType::kFloat16) t.data<uint16_t>()[i] = kernels::fp32_to_fp16(static_cast<float>(v));
        else t.data<uint16_t>()[i] = kernels::fp32_to_bf16(static_cast<float>(v));
      }
      break;
    case DType::kBool:
      for (size_t i = 0; i < leaves.size(); ++i) {
        if (!leaves[i]->is_boolean()) return make_error(ErrorCode::kInvalidArgument, "input '{}': element {} is not a boolean", name, i);
        t.data<uint8_t>()[i] = leaves[i]->get<bool>() ? 1 : 0;
      }
      break;
    case DType::kInt8: HEARTH_TRY(fill_ints<int8_t>(t, leaves, name)); break;
    case DType::kInt16: HEARTH_TRY(fill_ints<int16_t>(t, leaves, name)); break;
    case DType::kInt32: HEARTH_TRY(fill_ints<int32_t>(t, leaves, name)); break;
    case DType::kInt64: HEARTH_TRY(fill_ints<int64_t>(t, leaves, name)); break;
    case DType::kUint8: HEARTH_TRY(fill_ints<uint8_t>(t, leaves, name)); break;
    case DType::kUint16: HEARTH_TRY(fill_ints<uint16_t>(t, leaves, name)); break;
    case DType::kUint32: HEARTH_TRY(fill_ints<uint32_t>(t, leaves, name)); break;
    case DType::kUint64: HEARTH_TRY(fill_ints<uint64_t>(t, leaves, name)); break;
    default: return make_error(ErrorCode::kInvalidArgument, "input '{}': datatype not supported", name);
  }
  return t;
}

json tensor_to_json(const std::string& name, const Tensor& t) {
  json data = json::array();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    switch (t.dtype()) {
      case DType::kBool: data.push_back(t.data<uint8_t>()[i] != 0); break;
      case DType::kFloat:
      case DType::kDouble:
      case DType::kFloat16:
      case DType::kBFloat16: {
        const double v = t.double_at(i);
        if (std::isfinite(v)) data.push_back(v);
        else data.push_back(nullptr);  // JSON has no NaN or infinity
        break;
      }
      case DType::kUint64: data.push_back(t.data<uint64_t>()[i]); break;
      default: data.push_back(t.int_at(i)); break;
    }
  }
  return json{{"name", name}, {"datatype", oip_datatype(t.dtype())}, {"shape", t.shape()}, {"data", std::move(data)}};
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

Result<std::unique_ptr<onnx::Session>> open(const std::string& path, int n_threads, const MappedFile* mapping = nullptr) {
  onnx::SessionOptions o;
  o.n_threads = n_threads;
  if (!mapping) {
    HEARTH_ASSIGN_OR_RETURN(onnx::Session s, onnx::open_session(path, o));
    return std::make_unique<onnx::Session>(std::move(s));
  }
  HEARTH_ASSIGN_OR_RETURN(onnx::Session s, onnx::open_session(mapping->bytes(), path, o));
  return std::make_unique<onnx::Session>(std::move(s));
}

}  // namespace

OnnxService::~OnnxService() = default;

Result<std::unique_ptr<OnnxService>> OnnxService::create(const OnnxServiceConfig& config) {
  auto s = std::unique_ptr<OnnxService>(new OnnxService());
  s->config_ = config;
  for (const auto& m : config.models) {
    if (!valid_name(m.name)) return make_error(ErrorCode::kInvalidArgument, "ONNX model name '{}' must be 1-128 of [A-Za-z0-9._-]", m.name);
    if (s->find(m.name)) return make_error(ErrorCode::kInvalidArgument, "ONNX model name '{}' is given twice", m.name);
    auto served = std::make_unique<Served>();
    served->name = m.name;
    served->path = m.path;
    HEARTH_ASSIGN_OR_RETURN(served->session, open(m.path, config.n_threads, m.mapping.get()));
    s->models_.push_back(std::move(served));
  }
  if (!config.ocr_models_dir.empty()) {
    namespace fs = std::filesystem;
    const fs::path d(config.ocr_models_dir);
    HEARTH_ASSIGN_OR_RETURN(auto p, perception::OcrPipeline::load((d / "ch_PP-OCRv4_det_infer.onnx").string(), (d / "ch_PP-OCRv4_rec_infer.onnx").string(),
                                                                   (d / "ch_ppocr_mobile_v2.0_cls_infer.onnx").string(), (d / "ppocr_keys_v1.txt").string(),
                                                                   config.n_threads));
    s->ocr_ = std::make_unique<perception::OcrPipeline>(std::move(p));
  }
  if (!config.vad_model.empty()) {
    HEARTH_ASSIGN_OR_RETURN(auto v, perception::SileroVad::load(config.vad_model, 1));
    s->vad_ = std::make_unique<perception::SileroVad>(std::move(v));
  }
  return s;
}

OnnxService::Served* OnnxService::find(const std::string& name) const {
  for (const auto& m : models_) {
    if (m->name == name) return m.get();
  }
  return nullptr;
}

HttpResponse OnnxService::server_metadata() const {
  return json_response(200, json{{"name", "hearth"}, {"version", HEARTH_VERSION}, {"extensions", json::array()}});
}

HttpResponse OnnxService::list_models() const {
  json arr = json::array();
  for (const auto& m : models_) arr.push_back(json{{"name", m->name}, {"platform", "onnx"}, {"state", "READY"}});
  return json_response(200, json{{"models", arr}});
}

HttpResponse OnnxService::model_metadata(const std::string& name) const {
  Served* m = find(name);
  if (!m) return oip_error(404, fmt::format("no ONNX model named '{}'", name));
  json ins = json::array(), outs = json::array();
  for (const auto& v : m->session->inputs()) ins.push_back(tensor_metadata(v));
  for (const auto& v : m->session->outputs()) outs.push_back(tensor_metadata(v));
  return json_response(200, json{{"name", m->name}, {"versions", json::array({"1"})}, {"platform", "onnx"}, {"inputs", ins}, {"outputs", outs}});
}

HttpResponse OnnxService::model_ready(const std::string& name) const {
  if (!find(name)) return oip_error(404, fmt::format("no ONNX model named '{}'", name));
  return json_response(200, json{{"name", name}, {"ready", true}});
}

HttpResponse OnnxService::infer(const std::string& name, const HttpRequest& req) {
  Served* m = find(name);
  if (!m) return oip_error(404, fmt::format("no ONNX model named '{}'", name));
  json body;
  try {
    body = json::parse(req.body);
  } catch (const std::exception& e) {
    return oip_error(400, fmt::format("the body is not JSON: {}", e.what()));
  }
  if (!body.is_object() || !body.contains("inputs") || !body["inputs"].is_array()) {
    return oip_error(400, "the body must be an object with an \"inputs\" array");
  }
  std::vector<std::pair<std::string, Tensor>> feeds;
  for (const auto& in : body["inputs"]) {
    auto t = tensor_from_json(in, config_.max_elements);
    if (!t.ok()) return oip_error(t.status());
    feeds.emplace_back(in["name"].get<std::string>(), std::move(t).value());
  }
  std::vector<std::string> wanted;
  if (body.contains("outputs")) {
    if (!body["outputs"].is_array()) return oip_error(400, "\"outputs\" must be an array");
    for (const auto& o : body["outputs"]) {
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) return oip_error(400, "each requested output needs a \"name\"");
      wanted.push_back(o["name"].get<std::string>());
    }
  }
  const auto& declared = m->session->outputs();
  for (const auto& w : wanted) {
    if (std::none_of(declared.begin(), declared.end(), [&](const onnx::ValueInfo& v) { return v.name == w; })) {
      return oip_error(400, fmt::format("model '{}' has no output named '{}'", name, w));
    }
  }
  Result<std::vector<Tensor>> out = Status(ErrorCode::kInternal, "not run");
  {
    std::lock_guard lock(m->mu);
    out = m->session->run(feeds);
  }
  if (!out.ok()) return oip_error(out.status());
  json outputs = json::array();
  for (size_t i = 0; i < declared.size(); ++i) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), declared[i].name) == wanted.end()) continue;
    outputs.push_back(tensor_to_json(declared[i].name, (*out)[i]));
  }
  json resp{{"model_name", name}, {"model_version", "1"}};
  if (body.contains("id") && body["id"].is_string()) resp["id"] = body["id"];
  resp["outputs"] = std::move(outputs);
  return json_response(200, resp);
}

HttpResponse OnnxService::ocr(const HttpRequest& req) {
  if (!ocr_) return oip_error(404, "OCR is not enabled on this server (hearth serve --ocr-models DIR)");
  auto img = perception::decode_image(std::as_bytes(std::span<const char>(req.body.data(), req.body.size())), "the uploaded image");
  if (!img.ok()) return oip_error(img.status());
  Result<std::vector<perception::OcrLine>> lines = Status(ErrorCode::kInternal, "not run");
  {
    std::lock_guard lock(ocr_mu_);
    lines = ocr_->read(*img);
  }
  if (!lines.ok()) return oip_error(lines.status());
  json arr = json::array();
  for (const auto& l : *lines) {
    arr.push_back(json{{"text", l.text}, {"confidence", l.confidence}, {"box", {l.x, l.y, l.width, l.height}}, {"box_score", l.box_score}});
  }
  return json_response(200, json{{"width", img->width}, {"height", img->height}, {"lines", arr}});
}

HttpResponse OnnxService::vad(const HttpRequest& req) {
  if (!vad_) return oip_error(404, "voice activity detection is not enabled on this server (hearth serve --vad-model FILE)");
  auto raw = perception::decode_audio(std::as_bytes(std::span<const char>(req.body.data(), req.body.size())), "the uploaded audio");
  if (!raw.ok()) return oip_error(raw.status());
  auto a = perception::resample(*raw, perception::SileroVad::kSampleRate);
  if (!a.ok()) return oip_error(a.status());
  perception::VadOptions opt;
  if (auto t = req.query_param("threshold")) {
    try {
      opt.threshold = std::stof(*t);
    } catch (...) {
      return oip_error(400, "threshold must be a number");
    }
    if (!(opt.threshold > 0 && opt.threshold < 1)) return oip_error(400, "threshold must be between 0 and 1");
  }
  Result<std::vector<float>> probs = Status(ErrorCode::kInternal, "not run");
  {
    std::lock_guard lock(vad_mu_);
    probs = perception::vad_probabilities(*vad_, a->samples);
  }
  if (!probs.ok()) return oip_error(probs.status());
  const auto segs = perception::speech_segments(*probs, static_cast<int64_t>(a->samples.size()), opt);
  json arr = json::array();
  for (const auto& s : segs) arr.push_back(json{{"start", s.start}, {"end", s.end}});
  return json_response(200, json{{"seconds", raw->seconds()}, {"sample_rate", raw->sample_rate}, {"segments", arr}});
}

void add_onnx_routes(HttpServer& http, std::shared_ptr<OnnxService> svc,
                     const std::function<HttpHandler(std::function<HttpResponse(const HttpRequest&, int key)>)>& guard) {
  http.route("GET", "/v2", guard([svc](const HttpRequest&, int) { return svc->server_metadata(); }));
  http.route("GET", "/v2/health/live", guard([](const HttpRequest&, int) { return json_response(200, json{{"live", true}}); }));
  http.route("GET", "/v2/health/ready", guard([](const HttpRequest&, int) { return json_response(200, json{{"ready", true}}); }));
  http.route("GET", "/v2/models", guard([svc](const HttpRequest&, int) { return svc->list_models(); }));
  http.route("GET", "/v2/models/([^/]+)", guard([svc](const HttpRequest& r, int) { return svc->model_metadata(r.path_params.at(0)); }));
  http.route("GET", "/v2/models/([^/]+)/ready", guard([svc](const HttpRequest& r, int) { return svc->model_ready(r.path_params.at(0)); }));
  http.route("POST", "/v2/models/([^/]+)/infer", guard([svc](const HttpRequest& r, int) { return svc->infer(r.path_params.at(0), r); }));
  http.route("POST", "/v1/ocr", guard([svc](const HttpRequest& r, int) { return svc->ocr(r); }));
  http.route("POST", "/v1/vad", guard([svc](const HttpRequest& r, int) { return svc->vad(r); }));
}

}  // namespace hearth::server
