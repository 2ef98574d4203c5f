// Importance-matrix accumulation and its GGUF form (see imatrix.h for the layout).
#include "hearth/quantize/imatrix.h"

#include <cmath>
#include <cstring>

#include "hearth/gguf/gguf_writer.h"

namespace hearth::quantize {
namespace {

constexpr std::string_view kSum2Suffix = ".in_sum2";
constexpr std::string_view kCountsSuffix = ".counts";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A 2-D F32 tensor's values.
Result<std::vector<float>> f32_values(const gguf::GgufFile& file, const gguf::TensorInfo& t) {
  if (t.type != TensorType::F32) {
    return make_error(ErrorCode::kInvalidArgument, "{}: imatrix tensor '{}' is {}, expected f32", file.name(), t.name,
                      type_name(t.type));
  }
  std::vector<float> v(static_cast<size_t>(t.n_elements));
  std::memcpy(v.data(), t.data.data(), v.size() * sizeof(float));
  return v;
}

}  // namespace

const ImatrixEntry* Imatrix::find(std::string_view weight_name) const {
  auto it = entries_.find(weight_name);
  return it == entries_.end() ? nullptr : &it->second;
}

Status Imatrix::accumulate(std::string_view weight_name, int64_t mat, int64_t n_mat, int64_t n_cols, const float* x,
                           int64_t stride, int64_t n_rows) {
  auto it = entries_.find(weight_name);
  if (it == entries_.end()) {
    ImatrixEntry e;
    e.n_cols = n_cols;
    e.n_mat = n_mat;
    e.sum2.assign(static_cast<size_t>(n_cols * n_mat), 0.0);
    e.counts.assign(static_cast<size_t>(n_mat), 0.0);
    it = entries_.emplace(std::string(weight_name), std::move(e)).first;
  }
  ImatrixEntry& e = it->second;
  if (e.n_cols != n_cols || e.n_mat != n_mat || mat < 0 || mat >= n_mat) {
    return make_error(ErrorCode::kInvalidArgument,
                      "imatrix: '{}' has {} columns x {} matrices, got {} x {} (matrix {})", weight_name, e.n_cols,
                      e.n_mat, n_cols, n_mat, mat);
  }
  double* s = e.sum2.data() + mat * n_cols;
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = x + r * stride;
    for (int64_t j = 0; j < n_cols; ++j) s[j] += static_cast<double>(row[j]) * row[j];
  }
  e.counts[static_cast<size_t>(mat)] += static_cast<double>(n_rows);
  return ok_status();
}

std::vector<float> Imatrix::importance(const ImatrixEntry& e, int64_t mat) const {
  std::vector<float> w(static_cast<size_t>(e.n_cols), 1.0f);
  const double c = e.counts[static_cast<size_t>(mat)];
  if (c > 0) {
    const double* s = e.sum2.data() + mat * e.n_cols;
    for (int64_t j = 0; j < e.n_cols; ++j) w[static_cast<size_t>(j)] = static_cast<float>(s[j] / c);
  }
  return w;
}

Status Imatrix::write(const std::string& path) const {
  gguf::GgufWriter w;
  w.set_string("general.type", "imatrix");
  w.set_array_strings("imatrix.datasets", datasets);
  w.set_u32("imatrix.chunk_count", chunk_count);
  w.set_u32("imatrix.chunk_size", chunk_size);
  // The writer references tensor bytes until write(): keep every buffer alive here.
  std::vector<std::vector<float>> buffers;
  buffers.reserve(entries_.size() * 2);
  for (const auto& [name, e] : entries_) {
    auto& sums = buffers.emplace_back(e.sum2.begin(), e.sum2.end());
    auto& counts = buffers.emplace_back(e.counts.begin(), e.counts.end());
    auto bytes = [](const std::vector<float>& v) { return std::as_bytes(std::span<const float>(v)); };
    HEARTH_TRY(w.add_tensor(name + std::string(kSum2Suffix), TensorType::F32,
                            {static_cast<uint64_t>(e.n_cols), static_cast<uint64_t>(e.n_mat)}, bytes(sums)));
    HEARTH_TRY(w.add_tensor(name + std::string(kCountsSuffix), TensorType::F32, {1, static_cast<uint64_t>(e.n_mat)},
                            bytes(counts)));
  }
  return w.write(path);
}

Result<Imatrix> Imatrix::from_gguf(const gguf::GgufFile& file) {
  Imatrix m;
  auto type = file.get_string("general.type");
  if (!type.ok() || *type != "imatrix") {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: not an imatrix file (general.type is not \"imatrix\"; the legacy .dat format is not read)",
                      file.name());
  }
  if (auto ds = file.get_array("imatrix.datasets", gguf::ValueType::STRING); ds.ok()) {
    for (std::string_view s : (*ds)->strings) m.datasets.emplace_back(s);
  }
  if (auto c = file.get_u32("imatrix.chunk_count"); c.ok()) m.chunk_count = *c;
  if (auto c = file.get_u32("imatrix.chunk_size"); c.ok()) m.chunk_size = *c;
  for (const gguf::TensorInfo& t : file.tensors()) {
    if (!ends_with(t.name, kSum2Suffix)) continue;
    const std::string_view weight = t.name.substr(0, t.name.size() - kSum2Suffix.size());
    const std::string counts_name = std::string(weight) + std::string(kCountsSuffix);
    const gguf::TensorInfo* ct = file.find_tensor(counts_name);
    if (ct == nullptr) {
      return make_error(ErrorCode::kInvalidArgument, "{}: imatrix tensor '{}' has no '{}'", file.name(), t.name,
                        counts_name);
    }
    const uint64_t n_cols = t.ne[0];
    const uint64_t n_mat = t.ne[1] * t.ne[2] * t.ne[3];
    if (ct->n_elements != n_mat || n_cols == 0) {
      return make_error(ErrorCode::kInvalidArgument, "{}: '{}' has {} values for {} matrices", file.name(), counts_name,
                        ct->n_elements, n_mat);
    }
    HEARTH_ASSIGN_OR_RETURN(std::vector<float> sums, f32_values(file, t));
    HEARTH_ASSIGN_OR_RETURN(std::vector<float> counts, f32_values(file, *ct));
    ImatrixEntry e;
    e.n_cols = static_cast<int64_t>(n_cols);
    e.n_mat = static_cast<int64_t>(n_mat);
    e.sum2.assign(sums.begin(), sums.end());
    e.counts.assign(counts.begin(), counts.end());
    for (double v : e.sum2) {
      if (!std::isfinite(v) || v < 0) {
        return make_error(ErrorCode::kInvalidArgument, "{}: '{}' holds a negative or non-finite sum of squares",
                          file.name(), t.name);
      }
    }
    for (double v : e.counts) {
      if (!std::isfinite(v) || v < 0) {
        return make_error(ErrorCode::kInvalidArgument, "{}: '{}' holds a negative or non-finite count", file.name(),
                          counts_name);
      }
    }
    m.entries_.emplace(std::string(weight), std::move(e));
  }
  if (m.entries_.empty()) return make_error(ErrorCode::kInvalidArgument, "{}: the imatrix has no entries", file.name());
  return m;
}

Result<Imatrix> Imatrix::read(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(auto f, gguf::GgufModelFile::open(path));
  return from_gguf(f->file());
}

}  // namespace hearth::quantize
