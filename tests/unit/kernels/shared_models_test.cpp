// The formats against real files made by the reference implementation (llama.cpp b10573, in
// ../shared/models): every tensor of every quantized model, dequantized, must be close to the
// same tensor of the f32 model; and re-quantizing the f32 tensor with hearth's quantizer must
// reproduce the stored bytes exactly (the strongest independent oracle we have).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hearth/gguf/gguf.h"
#include "hearth/kernels/quant.h"
#include "shared_data.h"

namespace hearth::kernels {
namespace {

namespace fs = std::filesystem;

struct ModelPair {
  std::string quantized;  // relative to shared/models
  std::string f32;
};

const ModelPair kPairs[] = {
    {"stories260K-F16.gguf", "stories260K-f32.gguf"},
    {"stories260K-Q8_0.gguf", "stories260K-f32.gguf"},
    {"stories260K-Q4_0.gguf", "stories260K-f32.gguf"},
    {"stories260K-Q4_K_M.gguf", "stories260K-f32.gguf"},
    {"synth/synth-llama-Q8_0.gguf", "synth/synth-llama-f32.gguf"},
    {"synth/synth-llama-Q4_K_M.gguf", "synth/synth-llama-f32.gguf"},
    {"synth/synth-llama-moe-Q8_0.gguf", "synth/synth-llama-moe-f32.gguf"},
    {"synth/synth-llama-moe-Q4_K_M.gguf", "synth/synth-llama-moe-f32.gguf"},
    {"synth/synth-qwen2-Q8_0.gguf", "synth/synth-qwen2-f32.gguf"},
    {"synth/synth-qwen2-Q4_K_M.gguf", "synth/synth-qwen2-f32.gguf"},
    {"synth/synth-stablelm-Q8_0.gguf", "synth/synth-stablelm-f32.gguf"},
    {"synth/synth-stablelm-Q4_K_M.gguf", "synth/synth-stablelm-f32.gguf"},
    {"synth/synth-llama-IQ4_NL.gguf", "synth/synth-llama-f32.gguf"},
    {"synth/synth-llama-IQ4_XS.gguf", "synth/synth-llama-f32.gguf"},
};

// Bounds on rms(dequantized - f32) / rms(f32) per tensor. Real tensors are small (down to
// 2048 values) and not Gaussian, so these sit above the Gaussian bounds of
// quant_roundtrip_test.cpp by roughly 1.5x (measured worst cases over these files in brackets).
double max_rel_rmse(TensorType t) {
  switch (t) {
    case TensorType::F32: return 0.0;
    case TensorType::F16: return 4e-4;   // [2.1e-4]
    case TensorType::Q8_0: return 0.01;  // [0.0062]
    case TensorType::Q5_0: return 0.07;  // [0.050]
    case TensorType::Q4_0: return 0.13;  // [0.096]
    case TensorType::Q6_K: return 0.03;  // [0.018]
    case TensorType::Q4_K: return 0.11;  // [0.072]
    case TensorType::Q5_K: return 0.055;   // [0.036]
    case TensorType::IQ4_NL: return 0.12;  // [0.077]
    case TensorType::IQ4_XS: return 0.12;  // [0.077]
    default: return -1;                  // a type these files are not expected to contain
  }
}

struct Tally {
  int tensors = 0;
  int identical = 0;
};

TEST(SharedModels, DequantizedTensorsMatchF32AndRequantizationIsByteIdentical) {
  HEARTH_REQUIRE_SHARED(shared);
  std::map<std::string, Tally> by_type;  // requantization results per stored type
  std::map<std::string, double> worst_err;
  for (const auto& pair : kPairs) {
    SCOPED_TRACE(pair.quantized);
    auto qfile = gguf::GgufModelFile::open((shared / "models" / pair.quantized).string());
    ASSERT_TRUE(qfile.ok()) << qfile.status().to_string();
    auto ffile = gguf::GgufModelFile::open((shared / "models" / pair.f32).string());
    ASSERT_TRUE(ffile.ok()) << ffile.status().to_string();
    const gguf::GgufFile& q = (*qfile)->file();
    const gguf::GgufFile& f = (*ffile)->file();
    ASSERT_FALSE(q.tensors().empty());

    for (const gguf::TensorInfo& t : q.tensors()) {
      SCOPED_TRACE(std::string(t.name));
      const gguf::TensorInfo* ref = f.find_tensor(t.name);
      ASSERT_NE(ref, nullptr) << "no tensor of that name in " << pair.f32;
      ASSERT_EQ(ref->type, TensorType::F32);
      ASSERT_EQ(ref->n_elements, t.n_elements);
      ASSERT_EQ(ref->ne[0], t.ne[0]);
      ASSERT_TRUE(can_dequantize(t.type)) << type_name(t.type);
      const double bound = max_rel_rmse(t.type);
      ASSERT_GE(bound, 0.0) << "unexpected type " << type_name(t.type);

      const int64_t n_per_row = static_cast<int64_t>(t.ne[0]);
      const int64_t n_rows = static_cast<int64_t>(t.n_elements / t.ne[0]);
      const auto row_size = row_bytes(t.type, t.ne[0]);
      ASSERT_TRUE(row_size.has_value());
      ASSERT_EQ(*row_size * static_cast<uint64_t>(n_rows), t.data.size());
      const auto* src = reinterpret_cast<const float*>(ref->data.data());

      // 1. Dequantized vs f32.
      std::vector<float> row(static_cast<size_t>(n_per_row));
      double err = 0, sig = 0;
      for (int64_t r = 0; r < n_rows; ++r) {
        dequantize_row(t.type, t.data.data() + r * *row_size, row.data(), n_per_row);
        for (int64_t i = 0; i < n_per_row; ++i) {
          const double x = src[r * n_per_row + i];
          err += (row[i] - x) * (row[i] - x);
          sig += x * x;
        }
      }
      const double rel = sig > 0 ? std::sqrt(err / sig) : std::sqrt(err);
      EXPECT_LE(rel, bound) << type_name(t.type);
      auto& worst = worst_err[std::string(type_name(t.type))];
      worst = std::max(worst, rel);

      // 2. Re-quantize the f32 tensor and compare bytes.
      if (t.type == TensorType::F32) continue;
      std::vector<std::byte> mine(t.data.size());
      for (int64_t r = 0; r < n_rows; ++r) {
        quantize_row(t.type, src + r * n_per_row, mine.data() + r * *row_size, n_per_row);
      }
      const bool same = std::memcmp(mine.data(), t.data.data(), mine.size()) == 0;
      auto& tally = by_type[std::string(type_name(t.type))];
      ++tally.tensors;
      tally.identical += same;
      if (!same) {
        const uint64_t block = traits_of(t.type).type_size;
        uint64_t differ = 0;
        for (uint64_t b = 0; b < mine.size() / block; ++b) {
          differ += std::memcmp(mine.data() + b * block, t.data.data() + b * block, block) != 0;
        }
        ADD_FAILURE() << type_name(t.type) << ": " << differ << " of " << mine.size() / block
                      << " blocks differ from the reference quantizer's";
      }
    }
  }
  for (const auto& [type, tally] : by_type) {
    std::cout << "[ requant ] " << type << ": " << tally.identical << "/" << tally.tensors
              << " tensors byte-identical; worst dequant rel rmse " << worst_err[type] << "\n";
  }
  // The files hold these stored types; make sure each was actually exercised.
  for (const char* t : {"f16", "q8_0", "q4_0", "q5_0", "q4_k", "q6_k", "iq4_nl", "iq4_xs"}) EXPECT_GT(by_type[t].tensors, 0) << t;
}

}  // namespace
}  // namespace hearth::kernels
