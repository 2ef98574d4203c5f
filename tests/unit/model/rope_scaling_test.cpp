// RoPE scaling read from a file's keys: YaRN (rope.scaling.type "yarn") and linear. The YaRN
// check is a scalar reimplementation of the paper's formulas (Peng et al. 2023,
// arXiv:2309.00071: "NTK-by-parts" interpolation, eq. 18-20, and the attention scaling
// sqrt(1/t) = 0.1 ln(s) + 1, eq. 22), in double precision and written as the paper's inverse
// frequencies, against the model's cos/sin table applied by each kernel table's rope.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "hearth/kernels/kernel_table.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/model/rope_table.h"
#include "shared_data.h"
#include "tiny_model.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

struct YarnSpec {
  double factor = 4.0;        // s
  double orig_ctx = 512.0;    // L, the trained context
  double base = 10000.0;
  double beta_fast = 32.0;    // alpha/beta of the paper's ramp, in rotations over L
  double beta_slow = 1.0;
  int n_rot = 64;
};

// The paper's rotation of one head vector at position pos (pairs as `mode` lays them out).
std::vector<double> yarn_rotate(const std::vector<float>& x, int n_rot, int64_t pos, const YarnSpec& y,
                                kernels::RopeMode mode) {
  const double two_pi = 2.0 * 3.14159265358979323846;
  // The dimension d (of n_rot/2 pairs) whose wavelength fits r times in L.
  auto dim_for_rotations = [&](double r) { return n_rot * std::log(y.orig_ctx / (r * two_pi)) / (2.0 * std::log(y.base)); };
  const double low = std::max(0.0, std::floor(dim_for_rotations(y.beta_fast)));
  double high = std::min(static_cast<double>(n_rot - 1), std::ceil(dim_for_rotations(y.beta_slow)));
  if (high == low) high += 0.001;
  const double mscale = 0.1 * std::log(y.factor) + 1.0;
  std::vector<double> out(x.begin(), x.end());
  for (int d = 0; d < n_rot / 2; ++d) {
    const double inv_freq_extrapolated = std::pow(y.base, -2.0 * d / n_rot);
    const double inv_freq_interpolated = inv_freq_extrapolated / y.factor;
    const double gamma = 1.0 - std::clamp((d - low) / (high - low), 0.0, 1.0);  // 1: keep the trained frequency
    const double inv_freq = inv_freq_interpolated * (1.0 - gamma) + inv_freq_extrapolated * gamma;
    const double angle = static_cast<double>(pos) * inv_freq;
    const int a = mode == kernels::RopeMode::kNorm ? 2 * d : d;
    const int b = mode == kernels::RopeMode::kNorm ? 2 * d + 1 : d + n_rot / 2;
    const double x0 = x[static_cast<size_t>(a)], x1 = x[static_cast<size_t>(b)];
    out[static_cast<size_t>(a)] = (x0 * std::cos(angle) - x1 * std::sin(angle)) * mscale;
    out[static_cast<size_t>(b)] = (x0 * std::sin(angle) + x1 * std::cos(angle)) * mscale;
  }
  return out;
}

class RopeScalingTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_temp_dir("hearth-rope"); }
  void TearDown() override { fs::remove_all(dir_); }
  // A llama of head_dim 64 (n_embd 128, 2 heads) with the given extra keys.
  Result<std::unique_ptr<model::Model>> load(const std::string& name,
                                             const std::function<void(gguf::GgufWriter&)>& extra) {
    testing::TinyModel t("llama");
    t.n_embd = 128;
    t.llama_layout();
    t.w.set_u32("llama.context_length", 2048);
    extra(t.w);
    const std::string path = (dir_ / name).string();
    EXPECT_TRUE(t.w.write(path).ok());
    return model::Model::load(path);
  }
  fs::path dir_;
};

void yarn_keys(gguf::GgufWriter& w) {
  w.set_string("llama.rope.scaling.type", "yarn");
  w.set_f32("llama.rope.scaling.factor", 4.0f);
  w.set_u32("llama.rope.scaling.original_context_length", 512);
}

TEST_F(RopeScalingTest, YarnRotationMatchesThePaper) {
  auto m = load("yarn.gguf", yarn_keys);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const model::HParams& hp = (*m)->hparams();
  ASSERT_EQ(hp.n_rot, 64);
  EXPECT_NEAR(hp.rope_attn_factor, 0.1 * std::log(4.0) + 1.0, 1e-6);
  std::vector<float> table;
  const int64_t n_ctx = 2048;
  model::fill_rope_table(table, n_ctx, model::rope_table_params(hp, (*m)->weights().rope_freqs));
  const YarnSpec spec;
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int head_dim = 80;  // 16 dims past n_rot stay as they are
  for (const kernels::KernelTable* kt : kernels::available_kernels()) {
    for (auto mode : {kernels::RopeMode::kNorm, kernels::RopeMode::kNeox}) {
      for (int64_t pos : {0, 1, 5, 100, 511, 1000, 2047}) {
        SCOPED_TRACE(std::string(kt->name) + (mode == kernels::RopeMode::kNorm ? " norm" : " neox") + " pos " +
                     std::to_string(pos));
        std::vector<float> x(head_dim);
        for (auto& v : x) v = dist(rng);
        const auto want = yarn_rotate(x, 64, pos, spec, mode);
        kt->rope(x.data(), 1, head_dim, 64, table.data() + pos * 64, mode);
        // f32 angles from repeated multiplication: about 1e-7 * pos * (pair index) radians.
        const double tol = 2e-5 + 2e-7 * static_cast<double>(pos);
        for (int i = 0; i < head_dim; ++i) EXPECT_NEAR(x[static_cast<size_t>(i)], want[static_cast<size_t>(i)], tol) << i;
      }
    }
  }
}

// Without the ramp (yarn_ext_factor 0) YaRN is position interpolation with the magnitude
// scaling; beta keys move the ramp.
TEST_F(RopeScalingTest, YarnOptionalKeysAreRead) {
  auto m = load("keys.gguf", [](gguf::GgufWriter& w) {
    yarn_keys(w);
    w.set_f32("llama.rope.scaling.yarn_beta_fast", 16.0f);
    w.set_f32("llama.rope.scaling.yarn_beta_slow", 2.0f);
    w.set_f32("llama.rope.scaling.yarn_ext_factor", 0.5f);
    w.set_f32("llama.rope.scaling.attn_factor", 2.0f);
    w.set_f32("llama.rope.scaling.yarn_log_multiplier", 0.2f);
  });
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const model::HParams& hp = (*m)->hparams();
  EXPECT_EQ(hp.rope_yarn_beta_fast, 16.0f);
  EXPECT_EQ(hp.rope_yarn_beta_slow, 2.0f);
  EXPECT_EQ(hp.rope_yarn_ext_factor, 0.5f);
  EXPECT_EQ(hp.rope_n_ctx_orig, 512);
  EXPECT_NEAR(hp.rope_attn_factor, 2.0 * (1.0 + 0.2 * std::log(4.0)), 1e-6);
  // Absent original_context_length: the file's context_length.
  auto d = load("default.gguf", [](gguf::GgufWriter& w) {
    w.set_string("llama.rope.scaling.type", "yarn");
    w.set_f32("llama.rope.scaling.factor", 2.0f);
  });
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(model::rope_table_params((*d)->hparams(), {}).n_ctx_orig, 2048);
  EXPECT_EQ((*d)->hparams().rope_yarn_ext_factor, 1.0f);
}

TEST_F(RopeScalingTest, YarnModelGenerates) {
  auto y = load("yarn.gguf", yarn_keys);
  auto plain = load("plain.gguf", [](gguf::GgufWriter&) {});
  ASSERT_TRUE(y.ok() && plain.ok());
  auto run = [](const model::Model& m) {
    model::ContextParams p;
    p.n_ctx = 32;
    p.n_threads = 1;
    p.kv_type = kernels::KvType::kF32;
    auto c = model::Context::create(m, p);
    EXPECT_TRUE(c.ok());
    std::vector<model::BatchToken> batch;
    for (int i = 0; i < 6; ++i) batch.push_back({(i * 3 + 1) % 10, i, 0, i == 5});
    EXPECT_TRUE((*c)->decode(batch).ok());
    std::vector<float> last;
    for (int step = 0; step < 3; ++step) {
      auto l = (*c)->logits(0);
      last.assign(l.begin(), l.end());
      int32_t best = 0;
      for (size_t j = 0; j < l.size(); ++j) {
        EXPECT_TRUE(std::isfinite(l[j]));
        if (l[j] > l[static_cast<size_t>(best)]) best = static_cast<int32_t>(j);
      }
      model::BatchToken next{best, 6 + step, 0, true};
      EXPECT_TRUE((*c)->decode({&next, 1}).ok());
    }
    return last;
  };
  const auto a = run(**y), b = run(**plain);
  ASSERT_EQ(a.size(), 10u);
  EXPECT_NE(a, b) << "the same weights with YaRN keys must give other logits";
}

TEST_F(RopeScalingTest, BadYarnKeysAreLoadErrors) {
  struct Case {
    const char* name;
    std::function<void(gguf::GgufWriter&)> keys;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"factor0", [](gguf::GgufWriter& w) { yarn_keys(w); w.set_f32("llama.rope.scaling.factor", 0.0f); },
       "'llama.rope.scaling.factor' = 0 must be a positive rope scaling factor"},
      {"factorneg", [](gguf::GgufWriter& w) { yarn_keys(w); w.set_f32("llama.rope.scaling.factor", -2.0f); },
       "'llama.rope.scaling.factor' = -2 must be a positive rope scaling factor"},
      {"orig0", [](gguf::GgufWriter& w) { yarn_keys(w); w.set_u32("llama.rope.scaling.original_context_length", 0); },
       "'llama.rope.scaling.original_context_length' = 0 is outside [1,"},
      {"betas",
       [](gguf::GgufWriter& w) {
         yarn_keys(w);
         w.set_f32("llama.rope.scaling.yarn_beta_fast", 1.0f);
         w.set_f32("llama.rope.scaling.yarn_beta_slow", 4.0f);
       },
       "yarn_beta_fast 1 must be larger than yarn_beta_slow 4"},
      {"ext", [](gguf::GgufWriter& w) { yarn_keys(w); w.set_f32("llama.rope.scaling.yarn_ext_factor", 2.0f); },
       "'llama.rope.scaling.yarn_ext_factor' = 2 must be in [0, 1]"},
      {"nan", [](gguf::GgufWriter& w) { yarn_keys(w); w.set_f32("llama.rope.scaling.factor", NAN); },
       "must be a positive rope scaling factor"},
      {"base1", [](gguf::GgufWriter& w) { yarn_keys(w); w.set_f32("llama.rope.freq_base", 1.0f); },
       "YaRN rope scaling needs rope.freq_base > 1 (it is 1)"},
      {"longrope", [](gguf::GgufWriter& w) { w.set_string("llama.rope.scaling.type", "longrope"); },
       "rope scaling type 'longrope' is not supported (none, linear and yarn are)"},
      {"linear0", [](gguf::GgufWriter& w) {
         w.set_string("llama.rope.scaling.type", "linear");
         w.set_f32("llama.rope.scaling.factor", 0.0f);
       },
       "must be a positive rope scaling factor"},
  };
  for (const auto& c : cases) {
    auto m = load(std::string(c.name) + ".gguf", c.keys);
    ASSERT_FALSE(m.ok()) << c.name;
    EXPECT_NE(m.status().message().find(c.want), std::string::npos) << c.name << ": " << m.status().message();
  }
}

// Linear scaling by 2: the angle at position 2p is the unscaled angle at p.
TEST_F(RopeScalingTest, LinearScalingHalvesTheAngles) {
  auto lin = load("linear.gguf", [](gguf::GgufWriter& w) {
    w.set_string("llama.rope.scaling.type", "linear");
    w.set_f32("llama.rope.scaling.factor", 2.0f);
  });
  ASSERT_TRUE(lin.ok()) << lin.status().to_string();
  EXPECT_EQ((*lin)->hparams().rope_freq_scale, 0.5f);
  std::vector<float> table;
  model::fill_rope_table(table, 64, model::rope_table_params((*lin)->hparams(), {}));
  for (int64_t pos : {2, 10, 62}) {
    for (int d = 0; d < 32; ++d) {
      const double angle = static_cast<double>(pos) / 2.0 * std::pow(10000.0, -2.0 * d / 64);
      EXPECT_NEAR(table[static_cast<size_t>(pos * 64 + 2 * d)], std::cos(angle), 1e-5) << pos << " " << d;
      EXPECT_NEAR(table[static_cast<size_t>(pos * 64 + 2 * d + 1)], std::sin(angle), 1e-5) << pos << " " << d;
    }
  }
}

}  // namespace
}  // namespace hearth
