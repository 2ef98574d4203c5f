// `hearth anomaly train --csv FILE --window N --out model.onnx`: fits a small autoencoder to
// normal sensor data and writes it as ONNX (threshold and window in its metadata).
// `hearth anomaly score --model M --csv FILE [--stride S] [--json]`: scores every window on
// hearth's ONNX executor and flags those above the model's threshold.
// The training and the graph are the perception library's; this file parses flags and prints.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "hearth/onnx/loader.h"
#include "hearth/onnx/session.h"
#include "hearth/onnx/writer.h"
#include "hearth/perception/anomaly.h"

namespace hearth::cli {
namespace {

namespace pc = hearth::perception;
using Json = nlohmann::ordered_json;

struct TrainCmd {
  std::string csv, out;
  pc::AnomalyTrainOptions opt;
};

struct ScoreCmd {
  std::string csv, model;
  int stride = 0;
  bool json = false;
  int threads = 1;
};

void report(const Status& s) { set_exit_code(s.ok() ? 0 : report_error(s)); }

Status run_train(const TrainCmd& o) {
  HEARTH_ASSIGN_OR_RETURN(pc::SensorTable t, pc::read_sensor_csv(o.csv));
  pc::AnomalyTrainReport rep;
  HEARTH_ASSIGN_OR_RETURN(onnx::Model m, pc::train_anomaly_model(t, o.opt, &rep));
  HEARTH_TRY(onnx::save_model(m, o.out));
  std::printf("trained on %lld windows of %d rows x %d channels (%s); loss %.4g -> %.4g; threshold %.4g\nwrote %s\n",
              static_cast<long long>(rep.windows), o.opt.window, t.channels, m.metadata["hearth.anomaly.columns"].c_str(), rep.first_loss,
              rep.last_loss, rep.threshold, o.out.c_str());
  return ok_status();
}

Result<int64_t> meta_int(const onnx::Model& m, const char* key) {
  auto it = m.metadata.find(key);
  if (it == m.metadata.end()) return make_error(ErrorCode::kInvalidArgument, "the model has no {} metadata: not made by hearth anomaly train", key);
  try {
    size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    if (used != it->second.size() || v < 1 || v > (1 << 20)) throw std::invalid_argument("range");
    return static_cast<int64_t>(v);
  } catch (...) {
    return make_error(ErrorCode::kInvalidArgument, "the model's {} metadata '{}' is not a positive integer", key, it->second);
  }
}

Status run_score(const ScoreCmd& o) {
  HEARTH_ASSIGN_OR_RETURN(onnx::Model m, onnx::load_model_file(o.model));
  HEARTH_ASSIGN_OR_RETURN(int64_t window, meta_int(m, "hearth.anomaly.window"));
  HEARTH_ASSIGN_OR_RETURN(int64_t channels, meta_int(m, "hearth.anomaly.channels"));
  float threshold = 0;
  {
    auto it = m.metadata.find("hearth.anomaly.threshold");
    if (it == m.metadata.end()) return make_error(ErrorCode::kInvalidArgument, "the model has no hearth.anomaly.threshold metadata");
    try {
      threshold = std::stof(it->second);
    } catch (...) {
      return make_error(ErrorCode::kInvalidArgument, "the model's threshold '{}' is not a number", it->second);
    }
  }
  HEARTH_ASSIGN_OR_RETURN(pc::SensorTable t, pc::read_sensor_csv(o.csv));
  if (t.channels != channels) return make_error(ErrorCode::kInvalidArgument, "{} has {} columns, the model was trained on {}", o.csv, t.channels, channels);
  const int stride = o.stride > 0 ? o.stride : std::max<int>(1, static_cast<int>(window / 2));
  int64_t n = 0;
  const std::vector<float> xs = pc::sensor_windows(t, static_cast<int>(window), stride, &n);
  onnx::SessionOptions so;
  so.n_threads = o.threads;
  HEARTH_ASSIGN_OR_RETURN(onnx::Session s, onnx::Session::create(std::move(m), so));
  const int64_t d = window * channels;
  std::vector<float> scores;
  for (int64_t b0 = 0; b0 < n; b0 += 256) {
    const int64_t b1 = std::min<int64_t>(n, b0 + 256);
    HEARTH_ASSIGN_OR_RETURN(onnx::Tensor x, onnx::Tensor::from_values<float>({b1 - b0, d}, std::span<const float>(xs.data() + b0 * d, static_cast<size_t>((b1 - b0) * d))));
    std::vector<std::pair<std::string, onnx::Tensor>> feeds;
    feeds.emplace_back(s.inputs()[0].name, std::move(x));
    HEARTH_ASSIGN_OR_RETURN(auto out, s.run(feeds));
    const onnx::Tensor& sc = out[0];
    if (sc.dtype() != onnx::DType::kFloat || sc.numel() != b1 - b0) return make_error(ErrorCode::kInvalidArgument, "the model's score output is not one float per window");
    scores.insert(scores.end(), sc.data<float>(), sc.data<float>() + sc.numel());
  }
  int64_t flagged = 0;
  Json arr = Json::array();
  for (int64_t w = 0; w < n; ++w) {
    const bool bad = scores[static_cast<size_t>(w)] > threshold;
    flagged += bad;
    const int64_t start = w * stride, end = start + window;
    if (o.json) {
      arr.push_back({{"start_row", start}, {"end_row", end}, {"score", scores[static_cast<size_t>(w)]}, {"anomaly", bad}});
    } else if (bad) {
      std::printf("rows %lld-%lld: score %.4g > %.4g\n", static_cast<long long>(start), static_cast<long long>(end - 1), scores[static_cast<size_t>(w)],
                  threshold);
    }
  }
  if (o.json) {
    Json j{{"model", o.model}, {"csv", o.csv}, {"threshold", threshold}, {"window", window}, {"stride", stride}, {"anomalies", flagged}, {"windows", arr}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%lld of %lld windows anomalous (threshold %.4g)\n", static_cast<long long>(flagged), static_cast<long long>(n), threshold);
  }
  return ok_status();
}

void setup(CLI::App& app) {
  auto* a = app.add_subcommand("anomaly", "sensor anomaly detection: train an autoencoder (ONNX), score windows");
  a->require_subcommand(1);
  {
    auto o = std::make_shared<TrainCmd>();
    auto* c = a->add_subcommand("train", "fit an autoencoder to normal multichannel sensor data and write it as ONNX");
    c->add_option("--csv", o->csv, "CSV of normal data: one row per time step, one column per channel (optional header)")->required();
    c->add_option("--out", o->out, "the ONNX model to write")->required();
    c->add_option("--window", o->opt.window, "rows per window")->capture_default_str()->check(CLI::Range(1, 4096));
    c->add_option("--stride", o->opt.stride, "rows between training windows")->capture_default_str()->check(CLI::Range(1, 4096));
    c->add_option("--hidden", o->opt.hidden, "hidden width")->capture_default_str()->check(CLI::Range(1, 4096));
    c->add_option("--bottleneck", o->opt.bottleneck, "code width")->capture_default_str()->check(CLI::Range(1, 4096));
    c->add_option("--epochs", o->opt.epochs, "passes over the windows")->capture_default_str()->check(CLI::Range(1, 100000));
    c->add_option("--seed", o->opt.seed, "random seed")->capture_default_str();
    c->add_option("--quantile", o->opt.quantile, "threshold = this quantile of the training scores ...")->capture_default_str();
    c->add_option("--margin", o->opt.margin, "... times this")->capture_default_str();
    c->callback([o] { report(run_train(*o)); });
  }
  {
    auto o = std::make_shared<ScoreCmd>();
    auto* c = a->add_subcommand("score", "score the windows of a CSV and flag anomalies");
    c->add_option("--model", o->model, "a model from hearth anomaly train")->required();
    c->add_option("--csv", o->csv, "CSV with the training data's columns")->required();
    c->add_option("--stride", o->stride, "rows between windows (default: half a window)")->check(CLI::Range(1, 1 << 20));
    c->add_option("-t,--threads", o->threads, "threads")->check(CLI::Range(1, 1024));
    c->add_flag("--json", o->json, "every window's score as JSON");
    c->callback([o] { report(run_score(*o)); });
  }
}

CommandRegistrar reg(102, setup);

}  // namespace
}  // namespace hearth::cli
