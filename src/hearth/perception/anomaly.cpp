#include "hearth/perception/anomaly.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "hearth/core/mapped_file.h"

namespace hearth::perception {

using onnx::Attribute;
using onnx::DType;
using onnx::Node;
using onnx::Tensor;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t c = line.find(',', start);
    out.push_back(trim(line.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start)));
    if (c == std::string_view::npos) break;
    start = c + 1;
    if (out.size() > static_cast<size_t>(kMaxSensorChannels)) break;
  }
  return out;
}

bool parse_float(std::string_view s, float& v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(v);
}

}  // namespace

Result<SensorTable> parse_sensor_csv(std::string_view text, const std::string& what) {
  SensorTable t;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (trim(line).empty()) continue;
    auto fields = split(line);
    if (fields.size() > static_cast<size_t>(kMaxSensorChannels)) {
      return make_error(ErrorCode::kOutOfRange, "{}:{}: more than {} columns", what, line_no, kMaxSensorChannels);
    }
    if (t.channels == 0) {
      t.channels = static_cast<int>(fields.size());
      float v;
      if (!parse_float(fields[0], v)) {  // a header
        for (auto f : fields) t.columns.emplace_back(f);
        continue;
      }
      for (int c = 0; c < t.channels; ++c) t.columns.push_back("c" + std::to_string(c));
    }
    if (static_cast<int>(fields.size()) != t.channels) {
      return make_error(ErrorCode::kInvalidArgument, "{}:{}: {} fields, the first row has {}", what, line_no, fields.size(), t.channels);
    }
    if (t.rows >= kMaxSensorRows) return make_error(ErrorCode::kOutOfRange, "{}: more than {} rows", what, kMaxSensorRows);
    for (size_t c = 0; c < fields.size(); ++c) {
      float v;
      if (!parse_float(fields[c], v)) {
        return make_error(ErrorCode::kInvalidArgument, "{}:{}: field {} ('{}') is not a finite number", what, line_no, c + 1, fields[c]);
      }
      t.values.push_back(v);
    }
    ++t.rows;
  }
  if (t.rows == 0) return make_error(ErrorCode::kInvalidArgument, "{}: no data rows", what);
  return t;
}

Result<SensorTable> read_sensor_csv(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(MappedFile f, MappedFile::open(path));
  const auto b = f.bytes();
  return parse_sensor_csv(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), path);
}

std::vector<float> sensor_windows(const SensorTable& t, int window, int stride, int64_t* count) {
  std::vector<float> out;
  int64_t n = 0;
  const size_t w = static_cast<size_t>(window) * static_cast<size_t>(t.channels);
  for (int64_t r = 0; r + window <= t.rows; r += stride, ++n) {
    const float* src = t.values.data() + r * t.channels;
    out.insert(out.end(), src, src + w);
  }
  *count = n;
  return out;
}

namespace {

// A dense layer y = W x + b, W [out][in].
struct Layer {
  int in = 0, out = 0;
  std::vector<float> w, b, gw, gb, mw, vw, mb, vb;
  void init(int i, int o, std::mt19937_64& rng) {
    in = i;
    out = o;
    w.resize(static_cast<size_t>(i) * static_cast<size_t>(o));
    b.assign(static_cast<size_t>(o), 0.0f);
    std::normal_distribution<float> nd(0.0f, std::sqrt(2.0f / static_cast<float>(i)));
    for (float& x : w) x = nd(rng);
    gw.assign(w.size(), 0);
    gb.assign(b.size(), 0);
    mw.assign(w.size(), 0);
    vw.assign(w.size(), 0);
    mb.assign(b.size(), 0);
    vb.assign(b.size(), 0);
  }
  void forward(const float* x, float* y) const {
    for (int o = 0; o < out; ++o) {
      const float* wr = &w[static_cast<size_t>(o) * static_cast<size_t>(in)];
      float s = b[static_cast<size_t>(o)];
      for (int i = 0; i < in; ++i) s += wr[i] * x[i];
      y[o] = s;
    }
  }
  // Accumulates the gradients for input x and output gradient dy; writes dx (may be null).
  void backward(const float* x, const float* dy, float* dx) {
    if (dx) std::fill(dx, dx + in, 0.0f);
    for (int o = 0; o < out; ++o) {
      const float g = dy[o];
      gb[static_cast<size_t>(o)] += g;
      float* gr = &gw[static_cast<size_t>(o) * static_cast<size_t>(in)];
      const float* wr = &w[static_cast<size_t>(o) * static_cast<size_t>(in)];
      for (int i = 0; i < in; ++i) {
        gr[i] += g * x[i];
        if (dx) dx[i] += g * wr[i];
      }
    }
  }
  void adam(float lr, int step, float scale) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float c1 = 1.0f - std::pow(b1, static_cast<float>(step)), c2 = 1.0f - std::pow(b2, static_cast<float>(step));
    auto upd = [&](std::vector<float>& p, std::vector<float>& g, std::vector<float>& m, std::vector<float>& v) {
      for (size_t i = 0; i < p.size(); ++i) {
        const float gi = g[i] * scale;
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        p[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
        g[i] = 0;
      }
    };
    upd(w, gw, mw, vw);
    upd(b, gb, mb, vb);
  }
};

struct Net {
  Layer l1, l2, l3, l4;  // D->H relu, H->B linear, B->H relu, H->D linear
  // Activations of one window, kept for the backward pass.
  struct Acts {
    std::vector<float> h1, a1, z, h3, a3, y;
  };
  float forward(const float* x, Acts& a) const {
    a.h1.resize(static_cast<size_t>(l1.out));
    a.a1.resize(a.h1.size());
    a.z.resize(static_cast<size_t>(l2.out));
    a.h3.resize(static_cast<size_t>(l3.out));
    a.a3.resize(a.h3.size());
    a.y.resize(static_cast<size_t>(l4.out));
    l1.forward(x, a.h1.data());
    for (size_t i = 0; i < a.h1.size(); ++i) a.a1[i] = std::max(0.0f, a.h1[i]);
    l2.forward(a.a1.data(), a.z.data());
    l3.forward(a.z.data(), a.h3.data());
    for (size_t i = 0; i < a.h3.size(); ++i) a.a3[i] = std::max(0.0f, a.h3[i]);
    l4.forward(a.a3.data(), a.y.data());
    float s = 0;
    for (int i = 0; i < l4.out; ++i) {
      const float d = a.y[static_cast<size_t>(i)] - x[i];
      s += d * d;
    }
    return s / static_cast<float>(l4.out);
  }
  void backward(const float* x, Acts& a) {
    const int d = l4.out;
    std::vector<float> dy(static_cast<size_t>(d)), da3(static_cast<size_t>(l3.out)), dz(static_cast<size_t>(l2.out)),
        da1(static_cast<size_t>(l1.out));
    for (int i = 0; i < d; ++i) dy[static_cast<size_t>(i)] = 2.0f * (a.y[static_cast<size_t>(i)] - x[i]) / static_cast<float>(d);
    l4.backward(a.a3.data(), dy.data(), da3.data());
    for (size_t i = 0; i < da3.size(); ++i) if (a.h3[i] <= 0) da3[i] = 0;
    l3.backward(a.z.data(), da3.data(), dz.data());
    l2.backward(a.a1.data(), dz.data(), da1.data());
    for (size_t i = 0; i < da1.size(); ++i) if (a.h1[i] <= 0) da1[i] = 0;
    l1.backward(x, da1.data(), nullptr);
  }
};

Tensor vec_tensor(const std::vector<float>& v, onnx::Shape shape) { return Tensor::from_values<float>(std::move(shape), v).value(); }

Node make_node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  Node n;
  n.op_type = op;
  n.name = out[0];
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

}  // namespace

Result<onnx::Model> train_anomaly_model(const SensorTable& t, const AnomalyTrainOptions& opt, AnomalyTrainReport* report) {
  if (opt.window < 1 || opt.window > 4096 || opt.stride < 1 || opt.hidden < 1 || opt.hidden > 4096 || opt.bottleneck < 1 ||
      opt.bottleneck > opt.hidden || opt.epochs < 1 || opt.epochs > 100000 || opt.batch < 1) {
    return make_error(ErrorCode::kInvalidArgument, "anomaly training options out of range (window 1..4096, hidden 1..4096, 1 <= bottleneck <= hidden)");
  }
  if (!(opt.quantile > 0 && opt.quantile <= 1) || !(opt.margin >= 1)) {
    return make_error(ErrorCode::kInvalidArgument, "the threshold quantile must be in (0, 1] and the margin at least 1");
  }
  if (t.rows < opt.window) return make_error(ErrorCode::kInvalidArgument, "{} rows are fewer than one window of {}", t.rows, opt.window);
  const int C = t.channels, D = opt.window * C;
  if (static_cast<int64_t>(D) > 1 << 20) return make_error(ErrorCode::kOutOfRange, "a window of {} x {} values is too large", opt.window, C);
  // Per-channel normalization from the training data.
  std::vector<double> mean(static_cast<size_t>(C), 0.0), var(static_cast<size_t>(C), 0.0);
  for (int64_t r = 0; r < t.rows; ++r)
    for (int c = 0; c < C; ++c) mean[static_cast<size_t>(c)] += t.values[static_cast<size_t>(r * C + c)];
  for (auto& m : mean) m /= static_cast<double>(t.rows);
  for (int64_t r = 0; r < t.rows; ++r)
    for (int c = 0; c < C; ++c) {
      const double d = t.values[static_cast<size_t>(r * C + c)] - mean[static_cast<size_t>(c)];
      var[static_cast<size_t>(c)] += d * d;
    }
  std::vector<float> mean_d(static_cast<size_t>(D)), std_d(static_cast<size_t>(D));
  for (int i = 0; i < D; ++i) {
    const size_t c = static_cast<size_t>(i % C);
    mean_d[static_cast<size_t>(i)] = static_cast<float>(mean[c]);
    std_d[static_cast<size_t>(i)] = static_cast<float>(std::max(1e-6, std::sqrt(var[c] / static_cast<double>(t.rows))));
  }
  int64_t n = 0;
  std::vector<float> xs = sensor_windows(t, opt.window, opt.stride, &n);
  for (int64_t w = 0; w < n; ++w)
    for (int i = 0; i < D; ++i) {
      float& v = xs[static_cast<size_t>(w * D + i)];
      v = (v - mean_d[static_cast<size_t>(i)]) / std_d[static_cast<size_t>(i)];
    }
  std::mt19937_64 rng(opt.seed);
  Net net;
  net.l1.init(D, opt.hidden, rng);
  net.l2.init(opt.hidden, opt.bottleneck, rng);
  net.l3.init(opt.bottleneck, opt.hidden, rng);
  net.l4.init(opt.hidden, D, rng);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  Net::Acts acts;
  int step = 0;
  AnomalyTrainReport rep;
  rep.windows = n;
  for (int e = 0; e < opt.epochs; ++e) {
    std::shuffle(order.begin(), order.end(), rng);
    double loss = 0;
    for (int64_t b0 = 0; b0 < n; b0 += opt.batch) {
      const int64_t b1 = std::min<int64_t>(n, b0 + opt.batch);
      for (int64_t k = b0; k < b1; ++k) {
        const float* x = &xs[static_cast<size_t>(order[static_cast<size_t>(k)] * D)];
        loss += net.forward(x, acts);
        net.backward(x, acts);
      }
      ++step;
      const float scale = 1.0f / static_cast<float>(b1 - b0);
      for (Layer* l : {&net.l1, &net.l2, &net.l3, &net.l4}) l->adam(opt.learning_rate, step, scale);
    }
    loss /= static_cast<double>(n);
    if (e == 0) rep.first_loss = static_cast<float>(loss);
    rep.last_loss = static_cast<float>(loss);
  }
  rep.train_scores.resize(static_cast<size_t>(n));
  for (int64_t w = 0; w < n; ++w) rep.train_scores[static_cast<size_t>(w)] = net.forward(&xs[static_cast<size_t>(w * D)], acts);
  std::vector<float> sorted = rep.train_scores;
  std::sort(sorted.begin(), sorted.end());
  const size_t qi = std::min(sorted.size() - 1, static_cast<size_t>(std::floor(opt.quantile * static_cast<float>(sorted.size() - 1))));
  rep.threshold = sorted[qi] * opt.margin;

  // The ONNX graph: normalize, encode, decode, score.
  onnx::Model m;
  m.opset = 13;
  m.producer = "hearth";
  m.producer_version = "anomaly-autoencoder";
  m.graph.name = "hearth_sensor_autoencoder";
  auto& g = m.graph;
  g.initializers["mean"] = vec_tensor(mean_d, {D});
  g.initializers["std"] = vec_tensor(std_d, {D});
  int li = 1;
  for (Layer* l : {&net.l1, &net.l2, &net.l3, &net.l4}) {
    g.initializers[fmt::format("w{}", li)] = vec_tensor(l->w, {l->out, l->in});
    g.initializers[fmt::format("b{}", li)] = vec_tensor(l->b, {l->out});
    ++li;
  }
  auto gemm = [&](const std::string& x, int i, const std::string& y) {
    Node nd = make_node("Gemm", {x, fmt::format("w{}", i), fmt::format("b{}", i)}, {y});
    nd.attrs["transB"] = Attribute{int64_t{1}};
    return nd;
  };
  g.nodes.push_back(make_node("Sub", {"window", "mean"}, {"centered"}));
  g.nodes.push_back(make_node("Div", {"centered", "std"}, {"normalized"}));
  g.nodes.push_back(gemm("normalized", 1, "h1"));
  g.nodes.push_back(make_node("Relu", {"h1"}, {"a1"}));
  g.nodes.push_back(gemm("a1", 2, "code"));
  g.nodes.push_back(gemm("code", 3, "h3"));
  g.nodes.push_back(make_node("Relu", {"h3"}, {"a3"}));
  g.nodes.push_back(gemm("a3", 4, "reconstruction"));
  g.nodes.push_back(make_node("Sub", {"reconstruction", "normalized"}, {"error"}));
  g.nodes.push_back(make_node("Mul", {"error", "error"}, {"squared"}));
  Node rm = make_node("ReduceMean", {"squared"}, {"score"});
  rm.attrs["axes"] = Attribute{std::vector<int64_t>{1}};
  rm.attrs["keepdims"] = Attribute{int64_t{0}};
  g.nodes.push_back(rm);
  onnx::ValueInfo in;
  in.name = "window";
  in.dtype = DType::kFloat;
  in.has_shape = true;
  in.dims = {-1, D};
  in.dim_names = {"N", ""};
  g.inputs.push_back(in);
  onnx::ValueInfo score;
  score.name = "score";
  score.dtype = DType::kFloat;
  score.has_shape = true;
  score.dims = {-1};
  score.dim_names = {"N"};
  g.outputs.push_back(score);
  onnx::ValueInfo recon;
  recon.name = "reconstruction";
  recon.dtype = DType::kFloat;
  recon.has_shape = true;
  recon.dims = {-1, D};
  recon.dim_names = {"N", ""};
  g.outputs.push_back(recon);
  std::string cols;
  for (const auto& c : t.columns) cols += (cols.empty() ? "" : ",") + c;
  m.metadata["hearth.anomaly.threshold"] = fmt::format("{}", rep.threshold);
  m.metadata["hearth.anomaly.window"] = std::to_string(opt.window);
  m.metadata["hearth.anomaly.channels"] = std::to_string(C);
  m.metadata["hearth.anomaly.columns"] = cols;
  m.metadata["hearth.anomaly.layout"] = "window rows x channels, row-major, raw values";
  if (report) *report = std::move(rep);
  return m;
}

}  // namespace hearth::perception
