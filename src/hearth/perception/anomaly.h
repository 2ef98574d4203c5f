// Sensor anomaly detection: `hearth anomaly train` fits a small dense autoencoder to windows of
// normal multichannel sensor data (a CSV), and exports it as an ONNX model whose graph takes
// raw windows [N, window x channels] (row-major: time, then channel), normalizes them with the
// training data's per-channel mean and deviation, reconstructs them, and outputs each window's
// mean squared reconstruction error ("score") beside the reconstruction. The threshold above
// which a window is anomalous, the window and the columns are in the model's metadata
// (hearth.anomaly.*). `hearth anomaly score` runs it on hearth's ONNX executor; any ONNX
// runtime can run the exported file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/onnx/graph.h"

namespace hearth::perception {

struct SensorTable {
  std::vector<std::string> columns;
  int64_t rows = 0;
  int channels = 0;
  std::vector<float> values;  // rows x channels, row-major
};

inline constexpr int kMaxSensorChannels = 1024;
inline constexpr int64_t kMaxSensorRows = int64_t{1} << 26;

// A CSV of numbers (comma-separated; an optional header line of names). Every field must be a
// finite number and every row as wide as the first; errors name the line.
Result<SensorTable> read_sensor_csv(const std::string& path);
Result<SensorTable> parse_sensor_csv(std::string_view text, const std::string& what);

struct AnomalyTrainOptions {
  int window = 32;
  int stride = 1;        // between training windows
  int hidden = 64;
  int bottleneck = 8;
  int epochs = 40;
  int batch = 32;
  float learning_rate = 2e-3f;
  uint64_t seed = 1;
  float quantile = 0.995f;  // of the training windows' scores ...
  float margin = 2.0f;      // ... times this is the threshold
};

struct AnomalyTrainReport {
  int64_t windows = 0;
  float first_loss = 0, last_loss = 0;
  float threshold = 0;
  std::vector<float> train_scores;  // the final model's score of every training window
};

Result<onnx::Model> train_anomaly_model(const SensorTable& t, const AnomalyTrainOptions& opt, AnomalyTrainReport* report);

// The windows of t starting every `stride` rows, flattened [n][window x channels].
std::vector<float> sensor_windows(const SensorTable& t, int window, int stride, int64_t* count);

}  // namespace hearth::perception
