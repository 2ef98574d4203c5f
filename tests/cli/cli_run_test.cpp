// `hearth run` end to end: greedy output equals the reference continuation (up to the first
// generated token that is not clear), and bad inputs give one error line and a non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_helpers.h"
#include "hearth/gguf/gguf.h"
#include "hearth/tokenizer/tokenizer.h"
#include "shared_data.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

using cli_test::count_error_lines;
using cli_test::ends_with_error_line;
using cli_test::quote;
using cli_test::run;

TEST(CliRun, GreedyMatchesReferenceForEveryStoriesModel) {
  HEARTH_REQUIRE_SHARED(shared);
  for (const char* m :
       {"stories260K-f32", "stories260K-F16", "stories260K-Q8_0", "stories260K-Q4_0", "stories260K-Q4_K_M"}) {
    const std::string model = (shared / "models" / (std::string(m) + ".gguf")).string();
    auto file = gguf::GgufModelFile::open(model);
    ASSERT_TRUE(file.ok());
    auto tok = tokenizer::Tokenizer::from_gguf((*file)->file());
    ASSERT_TRUE(tok.ok());
    for (const char* c : {"once-upon-a-time", "little-dog-happy", "lily-and-ben"}) {
      std::ifstream jf(shared / "reference" / (std::string(m) + "__" + c + ".json"));
      nlohmann::json j = nlohmann::json::parse(jf);
      std::ifstream lf(shared / "reference" / j["logits_file"].get<std::string>(), std::ios::binary);
      const int64_t nv = j["n_vocab"], np = j["n_prompt"];
      std::vector<float> logits(static_cast<size_t>(j["n_positions"].get<int64_t>() * nv));
      lf.read(reinterpret_cast<char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
      const auto gen = j["generated_ids"].get<std::vector<int32_t>>();
      const auto margins = j["generated_margins"].get<std::vector<float>>();
      const bool quant = std::string(m).find("Q") != std::string::npos;
      // The clear prefix of the reference continuation, as text.
      std::vector<int32_t> clear;
      for (size_t k = 0; k < gen.size(); ++k) {
        const float* row = logits.data() + (np - 1 + static_cast<int64_t>(k)) * nv;
        float mn = row[0], mx = row[0];
        for (int64_t i = 0; i < nv; ++i) {
          mn = std::min(mn, row[i]);
          mx = std::max(mx, row[i]);
        }
        if (margins[k] < (quant ? 0.02f : 0.005f) * (mx - mn)) break;
        clear.push_back(gen[k]);
      }
      std::string expected;
      for (int32_t id : clear) expected += (*tok)->token_to_piece(id);
      auto o = run("run " + model + " -p " + quote(j["prompt"].get<std::string>()) + " --temp 0 -c 512 -n " +
                   std::to_string(gen.size()) + " --ignore-eos");
      ASSERT_EQ(o.exit_code, 0) << o.err;
      EXPECT_EQ(o.out.substr(0, expected.size()), expected)
          << m << " " << c << " (" << clear.size() << " clear tokens)";
      EXPECT_NE(o.err.find("generated: " + std::to_string(gen.size()) + " tokens"), std::string::npos) << o.err;
      EXPECT_NE(o.err.find("peak RSS"), std::string::npos);
    }
  }
}

TEST(CliRun, PromptFromStdinAndEcho) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::string model = (shared / "models" / "stories260K-f32.gguf").string();
  auto a = run("run " + model + " --temp 0 -c 512 -n 8", "Once upon a time");
  auto b = run("run " + model + " -p 'Once upon a time' --temp 0 -c 512 -n 8");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  auto e = run("run " + model + " -p 'Once upon a time' --temp 0 -c 512 -n 8 --echo");
  EXPECT_EQ(e.out, "Once upon a time" + b.out);
}

// llama.cpp's spellings work: -m for the model, -ngl (ignored, with a note); a typo gets a
// suggestion rather than CLI11's generic message.
// A Q8_0 K/V cache (-ctk/-ctv, llama.cpp's spellings) keeps the reference's greedy text on
// stories260K-f32 up to its first generated token that is not clear by the 8-bit criterion (a
// top-1 margin of 2 % of the row range, README §6 of ../shared/reference).
TEST(CliRun, QuantizedKvCacheKeepsTheGreedyText) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::string model = (shared / "models" / "stories260K-f32.gguf").string();
  auto file = gguf::GgufModelFile::open(model);
  ASSERT_TRUE(file.ok());
  auto tok = tokenizer::Tokenizer::from_gguf((*file)->file());
  ASSERT_TRUE(tok.ok());
  for (const char* c : {"once-upon-a-time", "lily-and-ben"}) {
    std::ifstream jf(shared / "reference" / "exact" / (std::string("stories260K-f32__") + c + ".json"));
    nlohmann::json j = nlohmann::json::parse(jf);
    std::ifstream lf(shared / "reference" / "exact" / j["logits_file"].get<std::string>(), std::ios::binary);
    const int64_t nv = j["n_vocab"], np = j["n_prompt"];
    std::vector<float> logits(static_cast<size_t>(j["n_positions"].get<int64_t>() * nv));
    lf.read(reinterpret_cast<char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
    const auto gen = j["generated_ids"].get<std::vector<int32_t>>();
    const auto margins = j["generated_margins"].get<std::vector<float>>();
    std::string expected;
    for (size_t k = 0; k < gen.size(); ++k) {
      const float* row = logits.data() + (np - 1 + static_cast<int64_t>(k)) * nv;
      const auto [mn, mx] = std::minmax_element(row, row + nv);
      if (margins[k] < 0.02f * (*mx - *mn)) break;
      expected += (*tok)->token_to_piece(gen[k]);
    }
    auto o = run("run " + model + " -p " + quote(j["prompt"].get<std::string>()) + " --temp 0 -c 512 -n " +
                 std::to_string(gen.size()) + " --ignore-eos -ctk q8_0 -ctv q8_0");
    ASSERT_EQ(o.exit_code, 0) << o.err;
    EXPECT_FALSE(expected.empty()) << c;
    EXPECT_EQ(o.out.substr(0, expected.size()), expected) << c;
  }
}

TEST(CliRun, FamiliarFlagsAndDidYouMean) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::string model = (shared / "models" / "stories260K-f32.gguf").string();
  auto plain = run("run " + model + " -p 'Once upon a time' --temp 0 -c 512 -n 8");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  for (const std::string& spelling : {"-m " + model + " -ngl 99", "-ngl=99 --model " + model, "-ngl99 -m " + model}) {
    auto r = run("run " + spelling + " -p 'Once upon a time' --temp 0 -c 512 -n 8");
    ASSERT_EQ(r.exit_code, 0) << spelling << ": " << r.err;
    EXPECT_EQ(r.out, plain.out) << spelling;
    EXPECT_NE(r.err.find("note: -ngl/--n-gpu-layers is ignored: hearth runs models on the CPU"), std::string::npos);
  }
  auto cmd = run("srve " + model);
  EXPECT_EQ(cmd.exit_code, 2);
  EXPECT_NE(cmd.err.find("error: unknown command 'srve'; did you mean 'serve'?"), std::string::npos) << cmd.err;
  auto flag = run("run " + model + " --seeed 3 -p x");
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_NE(flag.err.find("error: unknown option '--seeed' for 'hearth run'; did you mean '--seed'?"),
            std::string::npos)
      << flag.err;
  auto sub = run("store chek");
  EXPECT_EQ(sub.exit_code, 2);
  EXPECT_NE(sub.err.find("unknown command 'chek' for 'hearth store'; did you mean 'check'?"), std::string::npos)
      << sub.err;
  // A bad value is still CLI11's own message, naming the option.
  auto value = run("run " + model + " -n many -p x");
  EXPECT_NE(value.exit_code, 0);
  EXPECT_NE(value.err.find("many"), std::string::npos) << value.err;
}

// Speculative decoding keeps the greedy output: a lower-bit draft of the same model, a different
// model with the same vocabulary (synth-llama: random weights, so most guesses are refused), and
// prompt lookup. A draft with another vocabulary is refused.
TEST(CliRun, SpeculativeDecodingKeepsTheGreedyOutput) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::string model = (shared / "models" / "stories260K-f32.gguf").string();
  for (const char* prompt : {"Once upon a time", "The little dog was happy because", "Lily and Ben went to the park. They"}) {
    const std::string gen = std::string(" -p '") + prompt + "' --temp 0 -c 512 -n 96";
    auto plain = run("run " + model + gen);
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    for (const std::string& draft :
         {"--draft " + (shared / "models" / "stories260K-Q4_0.gguf").string(),
          "--draft " + (shared / "models" / "stories260K-Q8_0.gguf").string() + " --draft-max 4",
          "--draft " + (shared / "models" / "synth" / "synth-llama-f32.gguf").string(), std::string("--draft-ngram")}) {
      auto spec = run("run " + model + gen + " " + draft);
      ASSERT_EQ(spec.exit_code, 0) << draft << ": " << spec.err;
      EXPECT_EQ(spec.out, plain.out) << prompt << " with " << draft;
      EXPECT_NE(spec.err.find("| draft: "), std::string::npos) << spec.err;
    }
  }
  // An embedding model is refused as a draft (another vocabulary: engine_unit_test, DraftVocabulary).
  auto bert = run("run " + model + " -p x -n 4 --draft " + (shared / "models" / "synth" / "synth-bert-f32.gguf").string());
  EXPECT_NE(bert.exit_code, 0);
  EXPECT_NE(bert.err.find("is an embedding model"), std::string::npos) << bert.err;
}

TEST(CliRun, SeedMakesSamplingReproducible) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::string model = (shared / "models" / "stories260K-f32.gguf").string();
  auto a = run("run " + model + " -p 'The dog' -c 512 -n 32 --seed 7 --temp 1");
  auto b = run("run " + model + " -p 'The dog' -c 512 -n 32 --seed 7 --temp 1");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST(CliRun, BadInputsFailWithOneErrorLine) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::string model = (shared / "models" / "stories260K-f32.gguf").string();
  auto missing = run("run /nonexistent/model.gguf -p hi");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(ends_with_error_line(missing.err)) << missing.err;
  EXPECT_NE(missing.err.find("/nonexistent/model.gguf"), std::string::npos);
  EXPECT_EQ(count_error_lines(missing.err), 1) << missing.err;

  fs::path dir = testing::make_temp_dir("hearth-bad");
  std::ofstream(dir / "bad.gguf") << "GGUF but not really a model file";
  auto bad = run("run " + (dir / "bad.gguf").string() + " -p hi");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(ends_with_error_line(bad.err)) << bad.err;
  EXPECT_EQ(count_error_lines(bad.err), 1) << bad.err;
  fs::remove_all(dir);

  auto vocab_only = run("run " + (shared / "tokenizer-vectors" / "ggml-vocab-llama-spm.gguf").string() + " -p hi");
  EXPECT_NE(vocab_only.exit_code, 0);
  EXPECT_NE(vocab_only.err.find("no tensors"), std::string::npos) << vocab_only.err;

  auto huge = run("run " + model + " -p hi -c 100000000");
  EXPECT_NE(huge.exit_code, 0);
  EXPECT_NE(huge.err.find("error: "), std::string::npos) << huge.err;

  auto over_limit = run("run " + model + " -p hi -c 4096 --kv-limit 1");
  EXPECT_NE(over_limit.exit_code, 0);
  EXPECT_NE(over_limit.err.find("limit"), std::string::npos) << over_limit.err;

  // The shared options are checked the same way by every command (perplexity used to take any
  // --kv-type silently as f16).
  for (const std::string& cmd : {"run " + model + " -p hi", "perplexity " + model + " -f " + model, "serve " + model}) {
    auto kv = run(cmd + " --kv-type q8");
    EXPECT_NE(kv.exit_code, 0) << cmd << ": " << kv.err;
    EXPECT_NE(kv.err.find("--kv-type"), std::string::npos) << cmd << ": " << kv.err;
    for (const char* flag : {"--cache-type-k", "--cache-type-v", "-ctk"}) {
      auto typed = run(cmd + " " + flag + " q8");
      EXPECT_NE(typed.exit_code, 0) << cmd << " " << flag << ": " << typed.err;
      EXPECT_NE(typed.err.find(std::string(flag) == "-ctk" ? "--cache-type-k" : flag), std::string::npos)
          << cmd << ": " << typed.err;
    }
    auto threads = run(cmd + " --threads=-2");
    EXPECT_NE(threads.exit_code, 0) << cmd << ": " << threads.err;
    EXPECT_NE(threads.err.find("--threads"), std::string::npos) << cmd << ": " << threads.err;
  }
}

// The audit log's last record: {event, outcome, detail}.
std::vector<std::string> last_audit(const fs::path& home) {
  std::ifstream in(home / "audit.log");
  std::string line, last;
  while (std::getline(in, line)) last = line;
  if (last.empty()) return {};
  auto j = nlohmann::json::parse(last);
  return {j.value("event", ""), j.value("outcome", ""), j.value("detail", "")};
}

TEST(CliRun, AuditLogRecordsTheLoadAfterItsOutcome) {
  fs::path home = testing::make_temp_dir("hearth-audit");
  setenv("HEARTH_HOME", home.c_str(), 1);
  // A missing file was logged "run ok" before the load was even tried.
  auto missing = run("run /nonexistent/model.gguf -p hi");
  EXPECT_NE(missing.exit_code, 0);
  auto rec = last_audit(home);
  ASSERT_EQ(rec.size(), 3u);
  EXPECT_EQ(rec[0], "run");
  EXPECT_EQ(rec[1], "not_found");
  EXPECT_NE(rec[2].find("load failed"), std::string::npos) << rec[2];
  // A file that is not a model fails to load, and is recorded so.
  std::ofstream(home / "bad.gguf") << "GGUF but not really a model file";
  auto bad = run("run " + (home / "bad.gguf").string() + " -p hi");
  EXPECT_NE(bad.exit_code, 0);
  rec = last_audit(home);
  ASSERT_EQ(rec.size(), 3u);
  EXPECT_EQ(rec[0], "run");
  EXPECT_NE(rec[1], "ok");
  if (auto shared = testing::shared_dir()) {
    auto good = run("run " + (*shared / "models" / "stories260K-f32.gguf").string() + " -p hi -n 2 -c 64");
    EXPECT_EQ(good.exit_code, 0) << good.err;
    rec = last_audit(home);
    ASSERT_EQ(rec.size(), 3u);
    EXPECT_EQ(rec[0], "run");
    EXPECT_EQ(rec[1], "ok");
  }
  unsetenv("HEARTH_HOME");
  fs::remove_all(home);
}

TEST(CliRun, StoreReferencesAreVerifiedBeforeLoad) {
  HEARTH_REQUIRE_SHARED(shared);
  fs::path home = testing::make_temp_dir("hearth-home");
  const std::string env = "HEARTH_HOME=" + home.string() + " ";
  const std::string model = (shared / "models" / "stories260K-f32.gguf").string();
  const std::string bin = std::string(HEARTH_BIN);
  auto sh = [&](const std::string& args) { return std::system((env + bin + " " + args + " >/dev/null 2>&1").c_str()); };
  ASSERT_EQ(sh("import " + model + " demo/stories:v1"), 0);
  setenv("HEARTH_HOME", home.c_str(), 1);
  // Imported by this host: runs unsigned, as the file would.
  auto local = run("run demo/stories:v1 -p 'Once upon a time' --temp 0 -c 512 -n 4");
  EXPECT_EQ(local.exit_code, 0) << local.err;
  EXPECT_NE(local.err.find("imported locally from"), std::string::npos) << local.err;
  // Unsigned from elsewhere (no local-import record): refused with an explanation, unless --allow-unsigned.
  fs::remove_all(home / "store" / "local-imports");
  auto refused = run("run demo/stories:v1 -p 'Once upon a time' --temp 0 -c 512 -n 4");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("not signed"), std::string::npos) << refused.err;
  auto allowed = run("run demo/stories:v1 -p 'Once upon a time' --temp 0 -c 512 -n 4 --allow-unsigned");
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  // Signed by a key the policy trusts for demo/*: loads, and prints the same text as the file.
  ASSERT_EQ(sh("keygen --out " + (home / "acme").string()), 0);
  ASSERT_EQ(sh("sign demo/stories:v1 --key " + (home / "acme.key").string()), 0);
  ASSERT_EQ(sh("trust add " + (home / "acme.pub").string() + " --models 'demo/*' --name acme"), 0);
  auto signed_run = run("run demo/stories:v1 -p 'Once upon a time' --temp 0 -c 512 -n 8");
  auto file_run = run("run " + model + " -p 'Once upon a time' --temp 0 -c 512 -n 8");
  EXPECT_EQ(signed_run.exit_code, 0) << signed_run.err;
  EXPECT_EQ(signed_run.out, file_run.out);
  unsetenv("HEARTH_HOME");
  fs::remove_all(home);
}

}  // namespace
}  // namespace hearth
