// libFuzzer target: an ONNX model from a stranger. parse_model over arbitrary bytes must never
// crash, abort, leak or read out of bounds; a model it accepts goes through Session::create
// (op resolution, constant folding, fusion) and, when its inputs are small, one run on
// zero-filled inputs (dynamic dims set to 1), under a small per-tensor byte limit so that no
// input can make the run allocate or compute without bound.
// Seeds: small models of ONNX's own node tests (Debian's libonnx-testdata), copied into the
// corpus at start ($HEARTH_FUZZ_SEED_DIR) under distinct names, so no binary file is kept here.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "hearth/onnx/loader.h"
#include "hearth/onnx/session.h"

namespace {

void write_seeds() {
  const char* dir = std::getenv("HEARTH_FUZZ_SEED_DIR");
  if (dir == nullptr || *dir == '\0') return;
  namespace fs = std::filesystem;
  const fs::path node_tests = "/usr/share/libonnx-testdata/data/node";
  for (const char* name : {"test_conv_with_strides_padding", "test_convtranspose", "test_if", "test_lstm_defaults",
                           "test_resize_upsample_scales_linear", "test_slice", "test_gather_0", "test_reshape_reordered_all_dims",
                           "test_maxpool_2d_pads", "test_averagepool_2d_pads", "test_batchnorm_example", "test_softmax_axis_1",
                           "test_reduce_mean_keepdims_example", "test_concat_2d_axis_0", "test_add_bcast", "test_cast_FLOAT_to_FLOAT16",
                           "test_split_equal_parts_1d", "test_transpose_all_permutations_0", "test_pad", "test_gemm_default_single_elem_vector_bias"}) {
    std::error_code ec;
    fs::copy_file(node_tests / name / "model.onnx", fs::path(dir) / (std::string(name) + ".onnx"),
                  fs::copy_options::overwrite_existing, ec);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  write_seeds();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::onnx;
  auto model = parse_model(std::as_bytes(std::span<const uint8_t>(data, size)), LoadOptions{});
  if (!model.ok()) return 0;
  SessionOptions opt;
  opt.n_threads = 1;
  opt.max_tensor_bytes = 256 << 10;
  auto session = Session::create(std::move(model).value(), opt);
  if (!session.ok()) return 0;
  std::vector<std::pair<std::string, Tensor>> feeds;
  for (const auto& in : session->inputs()) {
    if (in.dtype == DType::kUndefined) return 0;
    Shape shape;
    for (int64_t d : in.dims) shape.push_back(d < 0 ? 1 : d);
    auto n = checked_numel(shape);
    if (!n.ok() || *n > 4096) return 0;
    auto t = Tensor::make(in.dtype, shape);
    if (!t.ok()) return 0;
    feeds.emplace_back(in.name, std::move(t).value());
  }
  auto out = session->run(feeds);
  (void)out;
  return 0;
}
