// The model-backed handlers on the shared stories260K model, called directly (no HTTP): token
// quotas under concurrency, per-key model scopes on every route that touches the model,
// logit_bias that bans everything, and the embeddings batch against the scheduler's queue.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "hearth/server/serving.h"
#include "shared_data.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

class HandlersLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HEARTH_REQUIRE_SHARED(shared);
    auto m = model::Model::load((shared / "models" / "stories260K-f32.gguf").string());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    sv_.model = std::move(m).value();
    auto t = tokenizer::Tokenizer::from_gguf(sv_.model->gguf());
    ASSERT_TRUE(t.ok());
    sv_.tokenizer = std::move(t).value();
    engine::SchedulerParams p;
    p.n_slots = 2;
    p.n_ctx = 256;
    p.n_threads = 1;
    p.max_queue = 4;
    auto s = engine::Scheduler::create(*sv_.model, *sv_.tokenizer, p);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    sv_.scheduler = std::move(s).value();
    sv_.model_id = "stories";
    sv_.metrics = &metrics_;
    auth_ = std::make_unique<Auth>(std::vector<ApiKey>{ApiKey{"sk-tpm", {}, 0, 20, {}},
                                                       ApiKey{"sk-other", {"other-model"}, 0, 0, {}},
                                                       ApiKey{"sk-open", {}, 0, 0, {}}});
    sv_.auth = auth_.get();
  }

  static HttpRequest request(const std::string& key, std::string body) {
    HttpRequest r;
    r.method = "POST";
    r.body = std::move(body);
    r.headers["authorization"] = "Bearer " + key;
    return r;
  }

  Serving sv_;
  Metrics metrics_;
  std::unique_ptr<Auth> auth_;
};

// Before: tokens were counted only when a request finished, so six requests admitted together
// each generated their max_tokens (the audit's six against tpm=20 used 612 tokens).
TEST_F(HandlersLimitsTest, ConcurrentRequestsStayWithinTheTokenQuota) {
  constexpr int kRequests = 6;
  std::vector<HttpResponse> responses(kRequests);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      HttpRequest req =
          request("sk-tpm", R"({"prompt":"Once upon a time","max_tokens":10,"temperature":0,"ignore_eos":true})");
      responses[static_cast<size_t>(i)] = handle_completion(sv_, req, /*chat=*/false, /*key=*/0);
    });
  }
  for (auto& t : threads) t.join();
  int64_t used = 0;
  int ok = 0, limited = 0;
  for (const HttpResponse& r : responses) {
    const json j = json::parse(r.body);
    if (r.status == 200) {
      ++ok;
      used += j["usage"]["total_tokens"].get<int64_t>();
    } else {
      EXPECT_EQ(r.status, 429) << r.body;
      ++limited;
    }
  }
  EXPECT_LE(used, 20);
  EXPECT_GE(ok, 1);
  EXPECT_GE(limited, 1);
  EXPECT_LE(auth_->tokens_committed(0), 20);
  // A request that needs more than what is left of the window (a prompt of that many tokens
  // plus one to generate) is refused with Retry-After.
  const int64_t left = 20 - auth_->tokens_committed(0);
  json prompt = json::array();
  for (int64_t i = 0; i < std::max<int64_t>(left, 1); ++i) prompt.push_back(100);
  HttpResponse next =
      handle_completion(sv_, request("sk-tpm", json{{"prompt", prompt}, {"max_tokens", 1}}.dump()), false, 0);
  EXPECT_EQ(next.status, 429) << next.body;
  EXPECT_FALSE(next.headers.empty());
}

TEST_F(HandlersLimitsTest, ModelScopesApplyToTokenizeDetokenizeAndEmbeddings) {
  const std::string tok_body = R"({"content":"Hello"})", detok_body = R"({"tokens":[1,2]})";
  EXPECT_EQ(handle_tokenize(sv_, request("sk-other", tok_body)).status, 404);
  EXPECT_EQ(handle_detokenize(sv_, request("sk-other", detok_body)).status, 404);
  EXPECT_EQ(handle_embeddings(sv_, request("sk-other", R"({"input":"a cat"})"), 1).status, 404);
  HttpResponse denied = handle_tokenize(sv_, request("sk-other", tok_body));
  EXPECT_EQ(json::parse(denied.body)["error"]["code"], "model_not_found");

  EXPECT_EQ(handle_tokenize(sv_, request("sk-open", tok_body)).status, 200);
  EXPECT_EQ(handle_detokenize(sv_, request("sk-open", detok_body)).status, 200);
  EXPECT_EQ(handle_embeddings(sv_, request("sk-open", R"({"input":"a cat"})"), 2).status, 200);
}

TEST_F(HandlersLimitsTest, LogitBiasThatBansEveryTokenIsA400) {
  json bias = json::object();
  for (int32_t id = 0; id < sv_.tokenizer->n_vocab(); ++id) bias[std::to_string(id)] = -100;
  for (bool stream : {false, true}) {
    json body = {{"prompt", "Once"}, {"max_tokens", 4}, {"logit_bias", bias}, {"stream", stream}};
    HttpResponse r = handle_completion(sv_, request("sk-open", body.dump()), false, 2);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(json::parse(r.body)["error"]["param"], "logit_bias");
  }
  bias.erase("42");
  json body = {{"prompt", "Once"}, {"max_tokens", 2}, {"logit_bias", bias}, {"temperature", 0}, {"ignore_eos", true}};
  HttpResponse r = handle_completion(sv_, request("sk-open", body.dump()), false, 2);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(HandlersLimitsTest, EmbeddingsBatchFitsTheSchedulerOrIsA400) {
  // 2 slots + a queue of 4: at most 6 inputs per request, said up front (never a half-queued
  // batch and a 503).
  json seven = json::array();
  for (int i = 0; i < 7; ++i) seven.push_back("text " + std::to_string(i));
  HttpResponse r = handle_embeddings(sv_, request("sk-open", json{{"input", seven}}.dump()), 2);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("at most 6 per request"), std::string::npos) << r.body;
  seven.erase(6);
  r = handle_embeddings(sv_, request("sk-open", json{{"input", seven}}.dump()), 2);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["data"].size(), 6u);
  // The default queue holds the documented maximum batch.
  EXPECT_GE(engine::SchedulerParams{}.max_queue, kMaxEmbeddingInputs);
}

// A generation whose schema needs more matcher work than its budget ends with an error that
// names the budget (a 400 for the client), instead of stalling the scheduler.
TEST_F(HandlersLimitsTest, ConstrainedDecodingStopsAtItsWorkBudget) {
  auto schema = std::make_shared<engine::JsonSchema>(engine::JsonSchema::any_object());
  schema->budget = engine::JsonWorkBudget{64, 100000};
  auto p = std::make_shared<engine::GenerationParams>();
  p->prompt = sv_.tokenizer->encode("Once upon a time", true, false);
  p->sampler.temperature = 0;
  p->max_tokens = 50;
  p->json_schema = schema;
  auto ch = sv_.scheduler->submit(p);
  ASSERT_TRUE(ch.ok());
  Status error;
  bool finished = false;
  std::vector<engine::GenerationEvent> events;
  while (!finished) {
    events.clear();
    (*ch)->wait(events, std::chrono::milliseconds(100));
    for (const auto& e : events) {
      if (e.kind != engine::GenerationEvent::Kind::kFinish) continue;
      finished = true;
      EXPECT_EQ(e.finish, engine::FinishReason::kError);
      error = e.error;
    }
  }
  EXPECT_NE(error.message().find("work budget"), std::string::npos) << error.to_string();
  EXPECT_EQ(api_error_from_status(error).status, 400);
}

}  // namespace
}  // namespace hearth::server
