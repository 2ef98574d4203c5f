// Whole-model quantization of the shared models: every type quantizes, reloads and runs, each
// tensor stays within an error bound derived from its bits, Q8_0/Q4_0 tensors are
// byte-identical to the reference quantizer's files, the KL divergence from the f32 model
// falls as bits grow, and the perplexity of hearth's files matches the reference figures.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/eval/kl_divergence.h"
#include "hearth/eval/logits_file.h"
#include "hearth/gguf/gguf.h"
#include "hearth/kernels/quant.h"
#include "hearth/quantize/quantize_model.h"
#include "shared_data.h"
#include "test_models.h"

namespace hearth::quantize {
namespace {

namespace fs = std::filesystem;

std::vector<float> to_f32(const gguf::TensorInfo& t) {
  std::vector<float> v(static_cast<size_t>(t.n_elements));
  kernels::dequantize_row(t.type, t.data.data(), v.data(), static_cast<int64_t>(t.n_elements));
  return v;
}

// Bits per weight of each type's quantized values (not counting scales).
int value_bits(TensorType t) {
  switch (t) {
    case TensorType::Q2_K: return 2;
    case TensorType::Q3_K: return 3;
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q4_K:
    case TensorType::IQ4_NL:
    case TensorType::IQ4_XS: return 4;
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q5_K: return 5;
    case TensorType::Q6_K: return 6;
    case TensorType::Q8_0: return 8;
    case TensorType::BF16: return 8;  // 8-bit mantissa
    case TensorType::F16: return 11;  // 11-bit mantissa
    default: return 24;
  }
}

// Bound on rms(error) / rms(weights) for a b-bit quantizer: a uniform grid of 2^b steps over a
// block whose largest magnitude is about 2.5 standard deviations (Gaussian-like weights,
// blocks of 16..32) has step 5 sigma / 2^b and rms error step / sqrt(12) = 1.44 sigma / 2^b;
// allow 1.5x for blocks with outliers and scale rounding.
double error_bound(TensorType t) { return t == TensorType::F32 ? 0.0 : 1.5 * 1.44 / std::ldexp(1.0, value_bits(t)); }

struct Files {
  fs::path shared, dir;
};

class QuantizeModelTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = hearth::testing::make_temp_dir("hearth-quantize"); }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path quantize(const fs::path& in, FileType ft, const std::string& tag = "") {
    const fs::path out = dir_ / (in.stem().string() + "-" + std::string(file_type_name(ft)) + tag + ".gguf");
    QuantizeParams p;
    p.recipe.ftype = ft;
    p.n_threads = 2;
    auto r = quantize_model(in.string(), out.string(), p);
    EXPECT_TRUE(r.ok()) << in << " " << file_type_name(ft) << ": " << r.status().to_string();
    return out;
  }

  fs::path dir_;
};

// Every tensor of `q` against the same tensor of the f32 source.
void check_error_bounds(const fs::path& f32, const fs::path& q, FileType ft) {
  auto a = gguf::GgufModelFile::open(f32.string());
  auto b = gguf::GgufModelFile::open(q.string());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*(*b)->file().get_u32("general.file_type"), static_cast<uint32_t>(ft));
  EXPECT_EQ(*(*b)->file().get_u32("general.quantization_version"), 2u);
  EXPECT_TRUE((*b)->file().get_string("hearth.quantize.note").ok());
  for (const gguf::TensorInfo& t : (*a)->file().tensors()) {
    const gguf::TensorInfo* u = (*b)->file().find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(u->n_elements, t.n_elements);
    if (t.n_dims == 1) {
      EXPECT_EQ(u->type, TensorType::F32) << t.name;  // 1-D tensors stay f32
    }
    const std::vector<float> x = to_f32(t), y = to_f32(*u);
    double se = 0, sx = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      se += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      sx += double(x[i]) * x[i];
    }
    const double rel = std::sqrt(se / std::max(sx, 1e-30));
    EXPECT_LE(rel, error_bound(u->type)) << q.filename() << ": " << t.name << " (" << type_name(u->type) << ")";
  }
}

TEST_F(QuantizeModelTest, EveryTypeQuantizesReloadsAndRuns) {
  HEARTH_REQUIRE_SHARED(shared);
  for (const fs::path& src : {shared / "models" / "stories260K-f32.gguf", shared / "models/synth/synth-llama-f32.gguf",
                              shared / "models/synth/synth-llama-moe-f32.gguf"}) {
    for (FileType ft : all_file_types()) {
      const fs::path out = quantize(src, ft);
      check_error_bounds(src, out, ft);
      auto m = model::Model::load(out.string());
      ASSERT_TRUE(m.ok()) << out << ": " << m.status().to_string();
      model::ContextParams cp;
      cp.n_ctx = 32;
      cp.n_threads = 1;
      auto ctx = model::Context::create(**m, cp);
      ASSERT_TRUE(ctx.ok());
      std::vector<model::BatchToken> batch = {{1, 0, 0, false}, {403, 1, 0, false}, {407, 2, 0, true}};
      ASSERT_TRUE((*ctx)->decode(batch).ok());
      for (float v : (*ctx)->logits(0)) ASSERT_TRUE(std::isfinite(v)) << out;
      fs::remove(out);
    }
  }
}

// Tensors stored in the same type by hearth and by the reference must hold the same bytes.
void expect_byte_identical(const fs::path& mine, const fs::path& ref, int* compared) {
  auto a = gguf::GgufModelFile::open(mine.string());
  auto b = gguf::GgufModelFile::open(ref.string());
  ASSERT_TRUE(a.ok() && b.ok());
  for (const gguf::TensorInfo& t : (*b)->file().tensors()) {
    const gguf::TensorInfo* u = (*a)->file().find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    if (u->type != t.type) continue;
    ASSERT_EQ(u->n_bytes, t.n_bytes) << t.name;
    EXPECT_TRUE(std::equal(u->data.begin(), u->data.end(), t.data.begin()))
        << mine.filename() << ": tensor " << t.name << " (" << type_name(t.type) << ") differs from the reference";
    ++*compared;
  }
}

TEST_F(QuantizeModelTest, Q8_0AndQ4_0AreByteIdenticalToTheReference) {
  HEARTH_REQUIRE_SHARED(shared);
  const fs::path m = shared / "models";
  int compared = 0;
  expect_byte_identical(quantize(m / "stories260K-f32.gguf", FileType::kQ8_0), m / "stories260K-Q8_0.gguf", &compared);
  expect_byte_identical(quantize(m / "stories260K-f32.gguf", FileType::kQ4_0), m / "stories260K-Q4_0.gguf", &compared);
  for (const char* s : {"synth-llama", "synth-llama-moe", "synth-qwen2", "synth-stablelm"}) {
    expect_byte_identical(quantize(m / "synth" / (std::string(s) + "-f32.gguf"), FileType::kQ8_0),
                          m / "synth" / (std::string(s) + "-Q8_0.gguf"), &compared);
  }
  // 48 tensors per stories file, and every synth tensor.
  EXPECT_GE(compared, 2 * 48 + 4 * 10);
}

// The K-quant scale searches are the reference's too: the Q4_K_M files (Q4_K, Q6_K, and the
// Q5_0/Q8_0/F16 fallbacks of stories260K) match as well.
TEST_F(QuantizeModelTest, Q4_K_MIsByteIdenticalToTheReference) {
  HEARTH_REQUIRE_SHARED(shared);
  const fs::path m = shared / "models";
  int compared = 0;
  expect_byte_identical(quantize(m / "stories260K-f32.gguf", FileType::kQ4_K_M), m / "stories260K-Q4_K_M.gguf",
                        &compared);
  for (const char* s : {"synth-llama", "synth-llama-moe", "synth-qwen2", "synth-stablelm"}) {
    expect_byte_identical(quantize(m / "synth" / (std::string(s) + "-f32.gguf"), FileType::kQ4_K_M),
                          m / "synth" / (std::string(s) + "-Q4_K_M.gguf"), &compared);
  }
  EXPECT_GE(compared, 48 + 4 * 10);
}

// IQ4_NL and IQ4_XS: the non-linear 4-bit search, and the recipe's Q5_K attn_v (n_gqa 4) and
// Q6_K output, against the reference's files of synth-llama.
TEST_F(QuantizeModelTest, IQ4_NLAndIQ4_XSAreByteIdenticalToTheReference) {
  HEARTH_REQUIRE_SHARED(shared);
  const fs::path d = shared / "models" / "synth";
  int compared = 0;
  for (FileType ft : {FileType::kIQ4_NL, FileType::kIQ4_XS}) {
    const std::string name(file_type_name(ft));
    expect_byte_identical(quantize(d / "synth-llama-f32.gguf", ft), d / ("synth-llama-" + name + ".gguf"), &compared);
  }
  // Every tensor of both files (21 each: 13 IQ4, 2 Q5_K, 1 Q6_K, 5 F32 norms).
  EXPECT_EQ(compared, 2 * 21);
}

// KL(f32 || quantized) over the same windows, from the f32 model's encoded log-probabilities.
double mean_kl(const testing::Scored& base, const testing::Scored& q) {
  const int64_t nv = base.n_vocab;
  std::vector<uint16_t> rec(static_cast<size_t>(eval::logits_record_values(nv)));
  eval::KlAccumulator acc;
  for (size_t i = 0; i < base.targets.size(); ++i) {
    eval::encode_log_probs(std::span<const float>(base.logits).subspan(i * nv, nv), rec);
    acc.add(std::span<const float>(q.logits).subspan(i * nv, nv), rec.data(), base.targets[i]);
  }
  return acc.summary().kld_mean;
}

TEST_F(QuantizeModelTest, KlDivergenceFallsAsBitsGrow) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::vector<FileType> ladder = {FileType::kQ2_K,   FileType::kQ3_K_M, FileType::kQ4_K_M,
                                        FileType::kQ5_K_M, FileType::kQ6_K,   FileType::kQ8_0};
  for (const char* s : {"synth-llama", "synth-llama-moe", "synth-qwen2", "synth-stablelm"}) {
    const fs::path src = shared / "models/synth" / (std::string(s) + "-f32.gguf");
    auto m = model::Model::load(src.string());
    ASSERT_TRUE(m.ok());
    const std::vector<int32_t> tokens = testing::tokenize_file(**m, shared / "models/alice_in_wonderland.txt");
    ASSERT_GT(tokens.size(), 1000u);
    const testing::Scored base = testing::score(src, tokens, 128, 4);
    // The f32 model against itself: zero up to the uint16 storage of the base log-probs.
    const double self = mean_kl(base, base);
    EXPECT_LT(std::fabs(self), 1e-4) << s;
    double prev = INFINITY;
    for (FileType ft : ladder) {
      const double kl = mean_kl(base, testing::score(quantize(src, ft), tokens, 128, 4));
      std::printf("%-16s %-7s mean KLD %.6f\n", s, std::string(file_type_name(ft)).c_str(), kl);
      EXPECT_LT(kl, prev) << s << ": " << file_type_name(ft) << " is not better than the type below it";
      EXPECT_GT(kl, 0.0);
      prev = kl;
    }
  }
}

// The perplexity of hearth's quantized stories260K files after the first windows, against the
// reference's running value for the same file type (../shared/reference/perplexity.json).
TEST_F(QuantizeModelTest, PerplexityMatchesTheReferenceFigures) {
  HEARTH_REQUIRE_SHARED(shared);
  std::ifstream in(shared / "reference" / "perplexity.json");
  const auto ref = nlohmann::json::parse(in);
  const fs::path src = shared / "models" / "stories260K-f32.gguf";
  auto m = model::Model::load(src.string());
  ASSERT_TRUE(m.ok());
  const std::vector<int32_t> tokens = testing::tokenize_file(**m, shared / "models/alice_in_wonderland.txt");
  ASSERT_EQ(tokens.size(), ref["n_tokens_in_text"].get<size_t>());
  constexpr int kWindows = 4;
  for (auto [ft, name] : std::vector<std::pair<FileType, std::string>>{{FileType::kQ8_0, "stories260K-Q8_0.gguf"},
                                                                       {FileType::kQ4_0, "stories260K-Q4_0.gguf"},
                                                                       {FileType::kQ4_K_M, "stories260K-Q4_K_M.gguf"},
                                                                       {FileType::kF16, "stories260K-F16.gguf"}}) {
    const double want = ref["results"][name]["running_ppl_after_each_chunk"][kWindows - 1].get<double>();
    const testing::Scored got = testing::score(quantize(src, ft), tokens, 512, kWindows);
    EXPECT_NEAR(got.ppl.ppl, want, 0.01 * want) << file_type_name(ft);
  }
}

}  // namespace
}  // namespace hearth::quantize
