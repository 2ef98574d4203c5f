// LoRA adapters as a user runs them: `--lora FILE[:SCALE]` on run (strict scales, clear errors),
// `hearth export` whose merged model equals base + adapter at inference, and `hearth serve`'s
// llama.cpp-compatible /lora-adapters routes and per-request "lora" field.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_helpers.h"
#include "hearth/gguf/gguf.h"
#include "hearth/model/context.h"
#include "hearth/model/lora_adapter.h"
#include "hearth/model/model.h"
#include "http_test_client.h"
#include "lora_fixture.h"

namespace hearth::cli_test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::LoraBase;
using testing::LoraFile;

struct TempDir {
  fs::path path = testing::make_temp_dir("hearth-cli-lora");
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

TEST(CliLora, BadScalesAndBadAdaptersAreOneClearError) {
  TempDir dir;
  LoraBase base;
  ASSERT_TRUE(base.write(dir / "base.gguf"));
  LoraFile good(base, {"blk.0.attn_q.weight"}, 2, 1);
  ASSERT_TRUE(good.write(dir / "a.gguf"));
  LoraFile wrong = good;
  wrong.general_type = "model";
  ASSERT_TRUE(wrong.write(dir / "wrong.gguf"));
  const std::string model = dir / "base.gguf";
  const std::pair<std::string, std::string> cases[] = {
      {"--lora " + (dir / "a.gguf") + ":abc", "scale 'abc' is not a finite number"},
      {"--lora " + (dir / "a.gguf") + ":nan", "scale 'nan' is not a finite number"},
      {"--lora " + (dir / "a.gguf") + ":1.5x", "scale '1.5x' is not a finite number"},
      {"--lora " + (dir / "a.gguf") + ":", "scale '' is not a finite number"},
      {"--lora " + (dir / "wrong.gguf"), (dir / "wrong.gguf") + ": general.type is \"model\", not \"adapter\""},
  };
  for (const auto& [args, message] : cases) {
    for (const char* cmd : {"run -p hi -n 1 ", "export --out /dev/null "}) {
      const Output o = run(std::string(cmd) + model + " " + args);
      EXPECT_EQ(o.exit_code, 2) << cmd << args << ": " << o.err;
      EXPECT_EQ(count_error_lines(o.err), 1) << o.err;
      EXPECT_NE(o.err.find(message), std::string::npos) << cmd << args << ": " << o.err;
    }
  }
  const Output missing = run("run -p hi " + model + " --lora " + (dir / "missing.gguf"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find(dir / "missing.gguf"), std::string::npos) << missing.err;
}

std::vector<float> prompt_logits(const model::Model& m, const std::vector<model::LoraUse>& lora) {
  model::ContextParams p;
  p.n_ctx = 32;
  p.n_threads = 2;
  p.kv_type = kernels::KvType::kF32;
  auto c = model::Context::create(m, p);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) return {};
  EXPECT_TRUE((*c)->set_adapters(0, lora).ok());
  std::vector<model::BatchToken> batch;
  const int32_t prompt[] = {3, 17, 5, 9, 22, 1, 12};
  for (int i = 0; i < 7; ++i) batch.push_back({prompt[i], i, 0, true});
  EXPECT_TRUE((*c)->decode(batch).ok());
  std::vector<float> out;
  for (int i = 0; i < (*c)->n_outputs(); ++i) out.insert(out.end(), (*c)->logits(i).begin(), (*c)->logits(i).end());
  return out;
}

TEST(CliLora, ExportedModelEqualsBasePlusAdaptersAtInference) {
  TempDir dir;
  LoraBase base;
  ASSERT_TRUE(base.write(dir / "base.gguf"));
  LoraFile f1(base, testing::all_lora_targets(), 4, 1);
  LoraFile f2(base, {"blk.0.attn_v.weight", "blk.1.ffn_gate.weight"}, 2, 2, 3.0f);
  ASSERT_TRUE(f1.write(dir / "a1.gguf") && f2.write(dir / "a2.gguf"));
  const Output o = run("export " + (dir / "base.gguf") + " --lora " + (dir / "a1.gguf") + ":0.7 --lora " +
                       (dir / "a2.gguf") + ":-1.5 --out " + (dir / "merged.gguf"));
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("14 of 21 tensors merged (f32) from 2 adapters"), std::string::npos) << o.out;

  auto m = model::Model::load(dir / "base.gguf");
  auto merged = model::Model::load(dir / "merged.gguf");
  ASSERT_TRUE(m.ok() && merged.ok());
  auto a1 = model::LoraAdapter::load(dir / "a1.gguf", **m);
  auto a2 = model::LoraAdapter::load(dir / "a2.gguf", **m);
  ASSERT_TRUE(a1.ok() && a2.ok());
  const std::vector<float> want = prompt_logits(**m, {{*a1, 0.7f}, {*a2, -1.5f}});
  const std::vector<float> got = prompt_logits(**merged, {});
  const std::vector<float> plain = prompt_logits(**m, {});
  ASSERT_EQ(got.size(), want.size());
  // The same tolerance as the model test (lora_test.cpp): the merged weights are W + s B A
  // summed in f32 here, the adapted path adds s B (A x); both are f32 reassociations of one sum.
  float worst = 0.0f, effect = 0.0f;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::fabs(got[i] - want[i]));
    effect = std::max(effect, std::fabs(plain[i] - want[i]));
  }
  EXPECT_LE(worst, 1e-4f);
  EXPECT_GT(effect, 0.1f);

  // Everything else is copied: metadata and unadapted tensors byte for byte.
  const gguf::GgufFile& bf = (*m)->gguf();
  const gguf::GgufFile& mf = (*merged)->gguf();
  EXPECT_EQ(bf.metadata().size(), mf.metadata().size());
  const auto* emb_b = bf.find_tensor("token_embd.weight");
  const auto* emb_m = mf.find_tensor("token_embd.weight");
  ASSERT_TRUE(emb_b && emb_m);
  EXPECT_TRUE(std::equal(emb_b->data.begin(), emb_b->data.end(), emb_m->data.begin(), emb_m->data.end()));

  // --type f16: the merged tensors are F16, the others keep their type.
  const Output h = run("export " + (dir / "base.gguf") + " --lora " + (dir / "a2.gguf") + " --type f16 --out " +
                       (dir / "merged16.gguf"));
  ASSERT_EQ(h.exit_code, 0) << h.err;
  auto f16 = gguf::GgufModelFile::open(dir / "merged16.gguf");
  ASSERT_TRUE(f16.ok());
  EXPECT_EQ((*f16)->file().find_tensor("blk.0.attn_v.weight")->type, TensorType::F16);
  EXPECT_EQ((*f16)->file().find_tensor("blk.0.attn_q.weight")->type, TensorType::F32);
  // The output is never the input.
  const Output same =
      run("export " + (dir / "base.gguf") + " --lora " + (dir / "a2.gguf") + " --out " + (dir / "base.gguf"));
  EXPECT_EQ(same.exit_code, 2) << same.err;
  EXPECT_NE(same.err.find("is the base model itself"), std::string::npos) << same.err;
}

// A random adapter (rank 4) on every attention and FFN weight of stories260K.
std::string write_stories_adapter(const fs::path& model, const std::string& out) {
  auto f = gguf::GgufModelFile::open(model.string());
  EXPECT_TRUE(f.ok());
  if (!f.ok()) return "";
  std::map<std::string, std::vector<uint64_t>> shapes;
  std::vector<std::string> targets;
  for (const auto& t : (*f)->file().tensors()) {
    const std::string name(t.name);
    shapes[name] = {t.ne[0], t.ne[1]};
    for (const char* s : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
      if (name.find(std::string(".") + s + ".weight") != std::string::npos) targets.push_back(name);
    }
  }
  LoraFile lf(shapes, targets, 4, 7, 8.0f);
  EXPECT_TRUE(lf.write(out));
  return out;
}

TEST(CliLora, RunAndExportOnStories) {
  HEARTH_REQUIRE_SHARED(shared);
  TempDir dir;
  const std::string model = (shared / "models/stories260K-f32.gguf").string();
  const std::string adapter = write_stories_adapter(model, dir / "a.gguf");
  const std::string gen = " -p \"Once upon a time\" -n 24 --temp 0 -t 2 ";
  const Output base = run("run " + model + gen);
  ASSERT_EQ(base.exit_code, 0) << base.err;
  const Output zero = run("run " + model + gen + "--lora " + adapter + ":0");
  ASSERT_EQ(zero.exit_code, 0) << zero.err;
  EXPECT_EQ(zero.out, base.out);
  const Output adapted = run("run " + model + gen + "--lora " + adapter + ":1");
  ASSERT_EQ(adapted.exit_code, 0) << adapted.err;
  EXPECT_NE(adapted.out, base.out);
  // Greedy text of the merged model equals that of base + adapter (f32 both ways; a logit tie
  // within 1e-4 would be needed to flip a token).
  const Output exp = run("export " + model + " --lora " + adapter + ":1 --out " + (dir / "merged.gguf"));
  ASSERT_EQ(exp.exit_code, 0) << exp.err;
  const Output merged = run("run " + (dir / "merged.gguf") + gen);
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  EXPECT_EQ(merged.out, adapted.out);
  // The merged model quantizes like any F32 model.
  const Output q = run("quantize " + (dir / "merged.gguf") + " " + (dir / "merged-q8.gguf") + " q8_0 --no-provenance");
  EXPECT_EQ(q.exit_code, 0) << q.err;
}

// `hearth perplexity --lora`: scale 0 scores like the base, the adapter scores like the merged
// model (the figures the llama.cpp cross-check, bench/llama_cpp_crosscheck.sh, compares).
TEST(CliLora, PerplexityWithAdapterEqualsMergedModel) {
  HEARTH_REQUIRE_SHARED(shared);
  TempDir dir;
  const std::string model = (shared / "models/stories260K-f32.gguf").string();
  const std::string adapter = write_stories_adapter(model, dir / "a.gguf");
  const std::string ppl = " -f " + (shared / "models/alice_in_wonderland.txt").string() + " -c 128 --chunks 4 -t 2";
  auto figure = [](const Output& o) {
    const size_t at = o.out.find("PPL = ");
    return at == std::string::npos ? -1.0 : std::stod(o.out.substr(at + 6));
  };
  const Output base = run("perplexity " + model + ppl);
  ASSERT_EQ(base.exit_code, 0) << base.err;
  const Output zero = run("perplexity " + model + ppl + " --lora " + adapter + ":0");
  ASSERT_EQ(zero.exit_code, 0) << zero.err;
  EXPECT_EQ(figure(zero), figure(base));
  const Output adapted = run("perplexity " + model + ppl + " --lora " + adapter);
  ASSERT_EQ(adapted.exit_code, 0) << adapted.err;
  EXPECT_NE(figure(adapted), figure(base));
  ASSERT_EQ(run("export " + model + " --lora " + adapter + " --out " + (dir / "m.gguf")).exit_code, 0);
  const Output merged = run("perplexity " + (dir / "m.gguf") + ppl);
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  EXPECT_NEAR(figure(merged), figure(adapted), 1e-3 * figure(adapted));
  const Output bad = run("perplexity " + model + ppl + " --lora " + adapter + ":x");
  EXPECT_NE(bad.exit_code, 0);
}

// An adapter that `hearth finetune` wrote loads on the f32 base and on a quantized (Q4_K_M)
// base, at inference and in export (whose merged tensors are then dequantized W + s B A).
TEST(CliLora, FinetunedAdapterOnF32AndQuantizedBases) {
  HEARTH_REQUIRE_SHARED(shared);
  TempDir dir;
  const std::string f32 = (shared / "models/stories260K-f32.gguf").string();
  const std::string q4 = (shared / "models/stories260K-Q4_K_M.gguf").string();
  const std::string text = (shared / "models/alice_in_wonderland.txt").string();
  const Output ft = run("finetune " + f32 + " --data " + text + " --out " + (dir / "ft.gguf") + " --steps 3 -t 2");
  ASSERT_EQ(ft.exit_code, 0) << ft.err;
  const std::string gen = " -p \"Alice was\" -n 16 --temp 0 -t 2 ";
  for (const std::string& base : {f32, q4}) {
    const Output plain = run("run " + base + gen);
    const Output zero = run("run " + base + gen + "--lora " + (dir / "ft.gguf") + ":0");
    const Output adapted = run("run " + base + gen + "--lora " + (dir / "ft.gguf"));
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    ASSERT_EQ(adapted.exit_code, 0) << adapted.err;
    EXPECT_EQ(zero.out, plain.out) << base;
  }
  const Output exp = run("export " + q4 + " --lora " + (dir / "ft.gguf") + " --out " + (dir / "m.gguf"));
  ASSERT_EQ(exp.exit_code, 0) << exp.err;
  EXPECT_NE(exp.out.find("35 of 48 tensors merged (f32)"), std::string::npos) << exp.out;
  auto merged = gguf::GgufModelFile::open(dir / "m.gguf");
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ((*merged)->file().find_tensor("blk.0.attn_q.weight")->type, TensorType::F32);
  EXPECT_EQ((*merged)->file().find_tensor("token_embd.weight")->type,
            (*gguf::GgufModelFile::open(q4))->file().find_tensor("token_embd.weight")->type);
  EXPECT_EQ(run("run " + (dir / "m.gguf") + gen).exit_code, 0);
}

// HTTP helpers over the raw loopback client.
const char* kKey = "lora-test-key";

struct Reply {
  int status = 0;
  std::string body;
};

Reply http(int port, const std::string& method, const std::string& path, const std::string& body = "",
           bool with_key = true) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
  if (with_key) req += std::string("Authorization: Bearer ") + kKey + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  const std::string r = http_test::exchange(port, req, 30);
  Reply out;
  out.status = http_test::status_of(r);
  const size_t at = r.find("\r\n\r\n");
  if (at != std::string::npos) out.body = r.substr(at + 4);
  return out;
}

// The greedy completion of a fixed prompt; `cached` gets the prompt tokens reused from the
// slot's cache (usage.prompt_tokens_details.cached_tokens).
std::string complete(int port, const std::string& extra, int64_t* cached = nullptr) {
  const std::string body = R"({"prompt":"Once upon a time","max_tokens":24,"temperature":0)" + extra + "}";
  const Reply r = http(port, "POST", "/v1/completions", body);
  EXPECT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("choices")) return "<" + r.body + ">";
  if (cached != nullptr) *cached = j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>();
  return j["choices"][0]["text"].get<std::string>();
}

TEST(CliLora, ServerListsSetsAndAppliesAdaptersPerRequest) {
  HEARTH_REQUIRE_SHARED(shared);
  TempDir dir;
  const fs::path model = shared / "models/stories260K-f32.gguf";
  const std::string adapter = write_stories_adapter(model, dir / "a.gguf");
  http_test::ServeProcess serve(model, {"--api-key", kKey, "--parallel", "1", "--lora", adapter + ":0"});
  ASSERT_TRUE(serve.ok()) << serve.log();
  const int port = serve.port();

  // The listing, and that it needs a key like every other route.
  Reply list = http(port, "GET", "/lora-adapters");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(json::parse(list.body), json::parse(R"([{"id":0,"path":")" + adapter + R"(","scale":0.0}])"));
  EXPECT_EQ(http(port, "GET", "/lora-adapters", "", false).status, 401);
  EXPECT_EQ(http(port, "POST", "/lora-adapters", R"([{"id":0,"scale":1}])", false).status, 401);

  // Global scale 0: the base model. A request's own "lora" applies to it alone. One slot, so
  // every request finds the previous one's rows in the cache: they are reused only when they
  // were computed with the same adapters.
  int64_t cached = -1;
  const std::string base = complete(port, "");
  const std::string adapted = complete(port, R"(,"lora":[{"id":0,"scale":1.0}])", &cached);
  EXPECT_NE(adapted, base);
  EXPECT_EQ(cached, 0) << "rows computed without the adapter were reused";
  EXPECT_EQ(complete(port, "", &cached), base) << "a request's lora must not leak into the next one";
  EXPECT_EQ(cached, 0);
  EXPECT_EQ(complete(port, R"(,"lora":[])", &cached), base);
  EXPECT_GT(cached, 0) << "the same (empty) adapter set reuses the cached prompt";

  // Bad lists are 400s naming the field.
  const std::pair<std::string, std::string> bad[] = {
      {R"(,"lora":[{"id":3,"scale":1}])", "'lora[0].id': unknown LoRA adapter id 3; this server's ids are 0 to 0"},
      {R"(,"lora":[{"id":-1,"scale":1}])", "'lora[0].id' must be a non-negative integer"},
      {R"(,"lora":[{"id":0,"scale":"high"}])", "'lora[0].scale' must be a number"},
      {R"(,"lora":[{"id":0,"scale":1e9}])", "'lora[0].scale' must be between -1000 and 1000"},
      {R"(,"lora":[{"id":0,"scale":1},{"id":0,"scale":2}])", "adapter 0 is listed twice"},
      {R"(,"lora":{"id":0})", "'lora' must be an array"},
  };
  for (const auto& [extra, message] : bad) {
    const Reply r = http(port, "POST", "/v1/completions", R"({"prompt":"hi","max_tokens":2)" + extra + "}");
    EXPECT_EQ(r.status, 400) << extra << ": " << r.body;
    EXPECT_NE(r.body.find(message), std::string::npos) << extra << ": " << r.body;
  }

  // POST sets the global scales: requests without "lora" now run with the adapter.
  Reply set = http(port, "POST", "/lora-adapters", R"([{"id":0,"scale":1.0}])");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(json::parse(http(port, "GET", "/lora-adapters").body)[0]["scale"], 1.0);
  EXPECT_EQ(complete(port, "", &cached), adapted);
  EXPECT_EQ(cached, 0);
  EXPECT_EQ(complete(port, R"(,"lora":[{"id":0,"scale":1}])", &cached), adapted);
  EXPECT_GT(cached, 0) << "the global set and the same per-request set are one adapter set";
  EXPECT_EQ(complete(port, R"(,"lora":[{"id":0,"scale":0}])"), base);
  const Reply unknown = http(port, "POST", "/lora-adapters", R"([{"id":1,"scale":1.0}])");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("unknown LoRA adapter id 1"), std::string::npos) << unknown.body;
  EXPECT_EQ(http(port, "POST", "/lora-adapters", "not json").status, 400);
  EXPECT_EQ(json::parse(http(port, "GET", "/lora-adapters").body)[0]["scale"], 1.0) << "a refused POST changes nothing";
}

}  // namespace
}  // namespace hearth::cli_test
