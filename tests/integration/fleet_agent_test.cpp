// Agents that switch models for real: a publisher signs three versions of a model and pushes
// them to a real docker-registry; enrolled agents (real `hearth agent run` processes, each with
// its own HEARTH_HOME and trust policy) receive signed desired states, pull, verify, gate and
// switch while they keep answering completions. A model with random weights fails its
// perplexity gate and is never served; a kill -9 restarts serving a whole model.
#include <fstream>
#include <random>
#include <regex>

#include "fleet_fixture.h"
#include "hearth/core/sha256.h"
#include "hearth/gguf/gguf.h"
#include "hearth/gguf/gguf_writer.h"
#include "hearth/registry/http_client.h"

namespace hearth::fleet_test {
namespace {

// A tiny story in the style the test model was trained on (TinyStories).
constexpr const char* kEvalText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day, she saw a "
    "big red ball in the park. She ran to the ball and kicked it very high. Her mom smiled and said, \"Good job, "
    "Lily!\" Lily was very happy. She played with the ball all day long. When the sun went down, Lily went home and "
    "ate her dinner. Then she went to bed and dreamed about the red ball. The next day, Lily and her friend Tom went "
    "to the park again. They played with the ball and had lots of fun together.";

// The same tensors and metadata as `src` (an F32 file), with random weights.
void write_random_weights(const std::string& src, const std::string& dst) {
  auto in = gguf::GgufModelFile::open(src);
  ASSERT_TRUE(in.ok()) << in.status().to_string();
  gguf::GgufWriter w;
  for (const auto& kv : (*in)->file().metadata()) w.copy_kv(kv);
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<std::vector<float>> data;  // the writer keeps views until write()
  data.reserve((*in)->file().tensors().size());
  for (const auto& t : (*in)->file().tensors()) {
    ASSERT_EQ(t.type, TensorType::F32) << t.name;
    std::vector<float>& v = data.emplace_back(t.n_elements);
    for (auto& x : v) x = normal(rng);
    std::vector<uint64_t> ne(t.ne, t.ne + t.n_dims);
    ASSERT_TRUE(w.add_tensor(std::string(t.name), t.type, ne, std::as_bytes(std::span(v))).ok());
  }
  auto written = w.write(dst);
  ASSERT_TRUE(written.ok()) << written.to_string();
}

struct Node {
  std::string id;
  int port = 0;
  std::unique_ptr<Proc> agent;
  std::string netns;  // the network namespace it runs in ("": the test's)
  std::vector<std::string> extra_args;
};

class FleetAgent : public FleetFixture {
 protected:
  void SetUp() override {
    HEARTH_REQUIRE_SHARED(shared);
    FleetFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string why;
    registry_ = hearth::testing::DockerRegistry::start(&why);
    if (!registry_) {
      if (hearth::testing::running_in_ci()) FAIL() << why;
      GTEST_SKIP() << why;
    }
    registry_url_ = registry_->url();
    // The publisher: three signed versions, pushed to the registry.
    pub_ = "HEARTH_HOME=" + (tmp_ / "publisher").string();
    ASSERT_EQ(cli(pub_, "keygen --out " + (tmp_ / "acme").string()).code, 0);
    std::string random = (tmp_ / "random.gguf").string();
    write_random_weights((shared / "models" / "stories260K-f32.gguf").string(), random);
    const std::pair<std::string, std::string> files[] = {{"v1", (shared / "models" / "stories260K-f32.gguf").string()},
                                                         {"v2", (shared / "models" / "stories260K-Q8_0.gguf").string()},
                                                         {"v3", random}};
    int version = 1;
    for (const auto& [tag, file] : files) {
      std::string ref = "models/stories:" + tag;
      auto imp = cli(pub_, "import " + file + " " + ref + " --model-version " + std::to_string(version++));
      ASSERT_EQ(imp.code, 0) << imp.out;
      auto sig = cli(pub_, "sign " + ref + " --key " + (tmp_ / "acme.key").string());
      ASSERT_EQ(sig.code, 0) << sig.out;
      auto push = cli(pub_, "push " + ref + " --to " + registry_->url());
      ASSERT_EQ(push.code, 0) << push.out;
      std::smatch m;
      ASSERT_TRUE(std::regex_search(push.out, m, std::regex("manifest (sha256:[0-9a-f]{64})"))) << push.out;
      digests_[tag] = m[1];
    }
  }
  void TearDown() override {
    nodes_.clear();
    registry_.reset();
    FleetFixture::TearDown();
  }

  Node& add_node(const std::string& id, std::vector<std::string> extra_args = {}) {
    auto e = enroll(id, token("--labels site=plant"), ca_sha_);
    EXPECT_EQ(e.code, 0) << e.out;
    auto t = cli("HEARTH_HOME=" + home(id),
                 "trust add " + (tmp_ / "acme.pub").string() + " --models 'models/*' --name acme");
    EXPECT_EQ(t.code, 0) << t.out;
    auto n = std::make_unique<Node>();
    n->id = id;
    n->port = hearth::testing::free_port();
    n->extra_args = std::move(extra_args);
    start_agent(*n);
    nodes_.push_back(std::move(n));
    return *nodes_.back();
  }
  void start_agent(Node& n) {
    std::vector<std::string> args{
        "agent", "run", "--serve", "127.0.0.1:" + std::to_string(n.port), "-t", "1", "--telemetry-interval", "1"};
    args.insert(args.end(), n.extra_args.begin(), n.extra_args.end());
    n.agent = std::make_unique<Proc>(home(n.id), args, (tmp_ / ("agent-" + n.id + ".log")).string(), n.netns);
  }

  fleet::DesiredState desired(const Node& n, uint64_t generation, const std::string& tag) {
    fleet::DesiredState d;
    d.fleet = "plant";
    d.node = n.id;
    d.generation = generation;
    d.issued_at = 1796000000;
    d.model = {"models/stories:" + tag, digests_.at(tag)};
    d.sources = {registry_url_};
    d.gates = {*fleet::parse_gate("eval_ppl < 200"), *fleet::parse_gate("decode_tok_s > 1")};
    d.eval_text = kEvalText;
    d.eval_text_digest = "sha256:" + sha256_hex(std::as_bytes(std::span(d.eval_text.data(), d.eval_text.size())));
    return d;
  }

  bool serving(const Node& n, const std::string& tag) {
    return wait_node(
        n.id,
        [&](const json& j) {
          return j.value("state", "") == "serving" && j["serving"].is_object() &&
                 j["serving"].value("digest", "") == digests_.at(tag);
        },
        90s);
  }

  // One completion against the node's OpenAI API; the HTTP status (0: no answer).
  static long complete(int port) {
    registry::HttpClient http;
    registry::HttpRequest req;
    req.method = "POST";
    req.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/completions";
    req.redirects = registry::Redirects::kNone;
    req.headers = {"Content-Type: application/json"};
    req.body = R"({"prompt":"Once upon a time","max_tokens":4,"temperature":0})";
    auto r = http.send(req);
    return r.ok() ? r->status : 0;
  }

  std::string pub_;
  std::map<std::string, std::string> digests_;
  std::unique_ptr<hearth::testing::DockerRegistry> registry_;
  std::string registry_url_;  // stays when the registry is stopped
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(FleetAgent, DeployGateRefuseSwitchAndSurviveKill) {
  Node& a = add_node("node-a");
  Node& b = add_node("node-b");
  ASSERT_TRUE(hearth::testing::wait_tcp(a.port, 15) && hearth::testing::wait_tcp(b.port, 15));

  // v1 everywhere; both answer completions with it.
  publish_desired(a.id, sign(desired(a, 1, "v1"), controller_key()));
  publish_desired(b.id, sign(desired(b, 1, "v1"), controller_key()));
  ASSERT_TRUE(serving(a, "v1")) << node_json(a.id).dump();
  ASSERT_TRUE(serving(b, "v1")) << node_json(b.id).dump();
  EXPECT_EQ(complete(a.port), 200);
  EXPECT_EQ(complete(b.port), 200);
  json va = node_json(a.id);
  EXPECT_LT(va["gate_values"].value("eval_ppl", 1e9), 200);

  // While node-a is asked to run v3 (random weights) and then v2, requests never fail.
  BackgroundLoad load({[&] { return complete(a.port); }});
  publish_desired(a.id, sign(desired(a, 2, "v3"), controller_key()));
  ASSERT_TRUE(wait_node(
      a.id, [](const json& j) { return j.value("state", "") == "failed" && j.value("reported_generation", 0) == 2; },
      90s))
      << node_json(a.id).dump();
  json fa = node_json(a.id);
  std::printf("node-a after v3: %s\n", fa.dump().c_str());
  EXPECT_NE(fa.value("reason", "").find("eval_ppl < 200"), std::string::npos) << fa.dump();
  EXPECT_GT(fa["gate_values"].value("eval_ppl", 0.0), 200) << fa.dump();
  EXPECT_EQ(fa["serving"].value("digest", ""), digests_["v1"]) << "a model that failed its gate is being served";

  publish_desired(a.id, sign(desired(a, 3, "v2"), controller_key()));
  ASSERT_TRUE(serving(a, "v2")) << node_json(a.id).dump();
  load.stop();
  EXPECT_GT(load.ok(), 0);
  EXPECT_EQ(load.failed(), 0) << "requests failed during the gate or the switch";
  std::printf("node-a after v3 (refused) and v2: %s\n%d completions answered during the gate and the switch\n",
              node_json(a.id).dump().c_str(), load.ok());

  // node-b never saw v3 or v2.
  EXPECT_EQ(node_json(b.id)["serving"].value("digest", ""), digests_["v1"]);

  // kill -9 and restart: the node serves its committed model again, and its store is whole.
  a.agent->kill(SIGKILL);
  start_agent(a);
  ASSERT_TRUE(hearth::testing::wait_tcp(a.port, 15));
  EXPECT_TRUE(poll_until([&] { return complete(a.port) == 200; }, 30s));
  ASSERT_TRUE(serving(a, "v2")) << node_json(a.id).dump();
  auto check = cli("HEARTH_HOME=" + home(a.id), "store check");
  EXPECT_EQ(check.code, 0) << check.out;
}

TEST_F(FleetAgent, StagedRolloutsAdvanceAndABadVersionStopsAtTheCanary) {
  std::vector<Node*> nodes;
  for (const char* id : {"edge-1", "edge-2", "edge-3", "edge-4"}) {
    // edge-3 declares labels of its own; the operator's site=plant (its join token) wins the key.
    std::vector<std::string> extra;
    if (std::string(id) == "edge-3") extra = {"--labels", "gpu=none,site=elsewhere"};
    nodes.push_back(&add_node(id, extra));
  }
  for (Node* n : nodes) ASSERT_TRUE(hearth::testing::wait_tcp(n->port, 15));
  ASSERT_EQ(cli("", "fleet --fleet " + dir_ + " label edge-4 site=elsewhere").code, 0);
  for (Node* n : nodes)
    ASSERT_TRUE(wait_node(
        n->id, [](const json& j) { return j.value("presence", "") == "online"; }, 30s));
  ASSERT_TRUE(wait_node(
      "edge-3", [](const json& j) { return j["labels"].value("gpu", "") == "none"; }, 30s))
      << node_json("edge-3").dump();
  json e3 = node_json("edge-3");
  EXPECT_EQ(e3["labels"].value("site", ""), "plant") << e3.dump();
  EXPECT_EQ(e3["declared_labels"].value("site", ""), "elsewhere") << e3.dump();
  auto by_declared = cli("", "fleet --fleet " + dir_ + " nodes --selector gpu=none --json");
  json bd = json::parse(by_declared.out, nullptr, false);
  ASSERT_TRUE(bd.is_object()) << by_declared.out;
  ASSERT_EQ(bd["nodes"].size(), 1u) << by_declared.out;
  EXPECT_EQ(bd["nodes"][0].value("id", ""), "edge-3");
  std::string eval = (tmp_ / "eval.txt").string();
  std::ofstream(eval) << kEvalText;
  auto start = [&](const std::string& tag, const std::string& selector) {
    auto r = cli("", "fleet --fleet " + dir_ + " rollout start models/stories:" + tag + " --selector " + selector +
                         " --batches 1,50%,100% --gate 'eval_ppl < 200' --gate 'decode_tok_s > 1' --eval-text " + eval +
                         " --bake 1s --max-failures 0 --mirror " + registry_->url() + " --json");
    EXPECT_EQ(r.code, 0) << r.out;
    return json::parse(r.out, nullptr, false).value("id", "");
  };
  auto wait = [&](const std::string& id) {
    auto r = cli("", "fleet --fleet " + dir_ + " rollout status " + id + " --wait --timeout 3m --json");
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j;
  };

  // v1 to every node (no selector), then v2 to the nodes labelled site=... none: the selector
  // is empty for the first, and edge-4 is outside the second.
  std::string r1 = start("v1", "''");
  ASSERT_FALSE(r1.empty());
  json s1 = wait(r1);
  ASSERT_EQ(s1.value("state", ""), "succeeded") << s1.dump();
  ASSERT_EQ(s1["batches"].size(), 3u) << s1.dump();  // 1, 50% of 4 = 2, 4
  EXPECT_EQ(s1["batches"][0]["nodes"].size(), 1u);
  EXPECT_EQ(s1["batches"][1]["nodes"].size(), 1u);
  EXPECT_EQ(s1["batches"][2]["nodes"].size(), 2u);
  for (Node* n : nodes) EXPECT_EQ(node_json(n->id)["serving"].value("digest", ""), digests_["v1"]) << n->id;

  std::string r2 = start("v2", "site=plant");
  json s2 = wait(r2);
  ASSERT_EQ(s2.value("state", ""), "succeeded") << s2.dump();
  for (Node* n : nodes)
    EXPECT_EQ(node_json(n->id)["serving"].value("digest", ""), digests_[n->id == "edge-4" ? "v1" : "v2"]) << n->id;

  // v3 (random weights) to site=plant: the canary fails its gate, the rollout aborts, and no
  // other node is ever sent v3.
  // Every node answers completions all through it: not one request fails.
  std::vector<std::function<long()>> requests;
  for (Node* n : nodes) requests.emplace_back([port = n->port] { return complete(port); });
  BackgroundLoad load(std::move(requests));
  std::string r3 = start("v3", "site=plant");
  json s3 = wait(r3);
  load.stop();
  EXPECT_GT(load.ok(), 0);
  EXPECT_EQ(load.failed(), 0) << "requests failed while the canary gated and refused v3";
  ASSERT_EQ(s3.value("state", ""), "aborted") << s3.dump();
  ASSERT_EQ(s3["batches"][0]["nodes"].size(), 1u);
  json canary = s3["batches"][0]["nodes"][0];
  EXPECT_EQ(canary.value("state", ""), "rolled_back") << s3.dump();
  EXPECT_GT(canary["gate_values"].value("eval_ppl", 0.0), 200) << s3.dump();
  for (size_t b = 1; b < s3["batches"].size(); ++b)
    for (const auto& n : s3["batches"][b]["nodes"]) EXPECT_EQ(n.value("state", ""), "pending") << s3.dump();
  for (Node* n : nodes) {
    EXPECT_EQ(node_json(n->id)["serving"].value("digest", ""), digests_[n->id == "edge-4" ? "v1" : "v2"]) << n->id;
    EXPECT_EQ(complete(n->port), 200) << n->id;
  }
  // The decisions are in the history, and no node but the canary ever got v3.
  auto history = cli("", "fleet --fleet " + dir_ + " history --json");
  json h = json::parse(history.out, nullptr, false);
  int v3_sent = 0, batches_done = 0, aborted = 0;
  for (const auto& a : h["audit"]) {
    std::string action = a.value("action", ""), detail = a.value("detail", "");
    if (action == "desired_published" && detail.find(digests_["v3"]) != std::string::npos) ++v3_sent;
    if (action == "batch_done") ++batches_done;
    if (action == "rollout_aborted" && a.value("subject", "") == r3) ++aborted;
  }
  EXPECT_EQ(v3_sent, 1);
  EXPECT_EQ(batches_done, 6);  // 3 for v1, 3 for v2
  EXPECT_EQ(aborted, 1);
  // Only the canary's store ever held v3.
  const std::string canary_id = canary.value("node", "");
  for (Node* n : nodes) {
    auto list = cli("HEARTH_HOME=" + home(n->id), "list");
    EXPECT_EQ(list.code, 0) << list.out;
    // `list` shows digests cut to 12 hex digits.
    const std::string v3_short = digests_["v3"].substr(0, std::string("sha256:").size() + 12);
    EXPECT_EQ(list.out.find(v3_short) != std::string::npos, n->id == canary_id) << n->id << ":\n" << list.out;
  }
}

TEST_F(FleetAgent, NodesKeepServingWhileBrokerAndControllerAreDownAndTheRolloutResumes) {
  std::vector<Node*> nodes;
  for (const char* id : {"edge-1", "edge-2", "edge-3"}) nodes.push_back(&add_node(id));
  for (Node* n : nodes) ASSERT_TRUE(hearth::testing::wait_tcp(n->port, 15));
  for (Node* n : nodes)
    ASSERT_TRUE(wait_node(
        n->id, [](const json& j) { return j.value("presence", "") == "online"; }, 30s));
  std::string eval = (tmp_ / "eval.txt").string();
  std::ofstream(eval) << kEvalText;
  // v1 everywhere through the controller (it owns the desired generations).
  auto r1 = cli("", "fleet --fleet " + dir_ + " rollout start models/stories:v1 --batches 100% --bake 0s --mirror " +
                        registry_->url() + " --json");
  ASSERT_EQ(r1.code, 0) << r1.out;
  auto s1 = cli("", "fleet --fleet " + dir_ + " rollout status " + json::parse(r1.out).value("id", "") +
                        " --wait --timeout 2m --json");
  ASSERT_EQ(json::parse(s1.out, nullptr, false).value("state", ""), "succeeded") << s1.out;
  for (Node* n : nodes) ASSERT_TRUE(serving(*n, "v1")) << n->id;
  auto r =
      cli("", "fleet --fleet " + dir_ + " rollout start models/stories:v2 --batches 1,2,3 --gate 'eval_ppl < 200'" +
                  " --eval-text " + eval + " --bake 4s --mirror " + registry_->url() + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  std::string id = json::parse(r.out).value("id", "");
  // Once the canary serves v2, the broker and the controller die mid-rollout.
  ASSERT_TRUE(poll_until(
      [&] {
        auto st = cli("", "fleet --fleet " + dir_ + " rollout status " + id + " --json");
        json j = json::parse(st.out, nullptr, false);
        return j.is_object() && j["batches"][0]["nodes"][0].value("state", "") == "serving";
      },
      60s));
  controller_->kill(SIGKILL);
  broker_->kill_hard();
  for (int i = 0; i < 3; ++i) {
    for (Node* n : nodes) EXPECT_EQ(complete(n->port), 200) << n->id << " stopped serving without the controller";
    std::this_thread::sleep_for(1s);
  }
  start_broker();
  start_controller();
  auto done = cli("", "fleet --fleet " + dir_ + " rollout status " + id + " --wait --timeout 3m --json");
  json j = json::parse(done.out, nullptr, false);
  ASSERT_EQ(j.value("state", ""), "succeeded") << done.out;
  for (Node* n : nodes)
    EXPECT_EQ(node_json(n->id)["serving"].value("digest", ""), digests_["v2"])
        << n->id << " v1=" << digests_["v1"] << " v2=" << digests_["v2"] << "\n"
        << done.out << "\n"
        << node_json(n->id).dump();
  // Nothing repeated, nothing lost: one desired state per node for v2, one batch_done per batch.
  json h = json::parse(cli("", "fleet --fleet " + dir_ + " history --json").out, nullptr, false);
  std::map<std::string, int> sent;
  int batches_done = 0;
  for (const auto& a : h["audit"]) {
    if (a.value("action", "") == "desired_published" && a.value("detail", "").find(digests_["v2"]) != std::string::npos)
      ++sent[a.value("subject", "")];
    if (a.value("action", "") == "batch_done" && a.value("subject", "") == id) ++batches_done;
  }
  for (Node* n : nodes) EXPECT_EQ(sent[n->id], 1) << n->id;
  EXPECT_EQ(batches_done, 3);
}

TEST_F(FleetAgent, ANodeRefusesAModelItsOwnPolicyDoesNotTrustEvenWhenTheControllerAsks) {
  Node& n = add_node("edge-1");
  ASSERT_TRUE(hearth::testing::wait_tcp(n.port, 15));
  // This node's policy trusts acme for models/* only; the same files under another name are
  // signed by acme for that name, which the node does not trust.
  ASSERT_EQ(cli(pub_, "import " + (tmp_ / "random.gguf").string() + " other/stories:v1 --model-version 1").code, 0);
  ASSERT_EQ(cli(pub_, "sign other/stories:v1 --key " + (tmp_ / "acme.key").string()).code, 0);
  auto push = cli(pub_, "push other/stories:v1 --to " + registry_->url());
  ASSERT_EQ(push.code, 0) << push.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(push.out, m, std::regex("manifest (sha256:[0-9a-f]{64})")));
  fleet::DesiredState d = desired(n, 1, "v1");
  d.model = {"other/stories:v1", m[1]};
  d.gates.clear();
  publish_desired(n.id, sign(d, controller_key()));
  ASSERT_TRUE(wait_node(
      n.id, [](const json& j) { return j.value("state", "") == "failed" && j.value("reported_generation", 0) == 1; },
      60s))
      << node_json(n.id).dump();
  json j = node_json(n.id);
  EXPECT_TRUE(j["serving"].is_null()) << j.dump();
  std::string reason = j.value("reason", "");
  EXPECT_TRUE(reason.find("trust") != std::string::npos || reason.find("not trusted") != std::string::npos ||
              reason.find("refused") != std::string::npos)
      << reason;
}

// The model id the node's API serves ("models/stories:v1"), or "" when it does not answer.
std::string served_model(int port) {
  registry::HttpClient http;
  registry::HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/models";
  auto r = http.send(req);
  if (!r.ok() || r->status != 200) return "";
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j["data"].is_array() || j["data"].empty()) return "";
  return j["data"][0].value("id", "");
}

TEST_F(FleetAgent, KillNineDuringSwitchesAlwaysComesBackServingAWholeModel) {
  Node& n = add_node("edge-1");
  ASSERT_TRUE(hearth::testing::wait_tcp(n.port, 15));
  publish_desired(n.id, sign(desired(n, 1, "v1"), controller_key()));
  ASSERT_TRUE(serving(n, "v1"));
  std::mt19937 rng(7);
  for (uint64_t gen = 2; gen <= 6; ++gen) {
    std::string tag = gen % 2 == 0 ? "v2" : "v1";
    fleet::DesiredState d = desired(n, gen, tag);
    d.allow_downgrade = true;  // back and forth between v1 and v2
    publish_desired(n.id, sign(d, controller_key()));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 1200)(rng)));
    n.agent->kill(SIGKILL);
    start_agent(n);
    ASSERT_TRUE(hearth::testing::wait_tcp(n.port, 15));
    ASSERT_TRUE(poll_until([&] { return complete(n.port) == 200; }, 30s)) << "generation " << gen;
    std::string model = served_model(n.port);
    EXPECT_TRUE(model == "models/stories:v1" || model == "models/stories:v2") << model;
    // Then it finishes the switch it was asked for.
    ASSERT_TRUE(poll_until([&] { return served_model(n.port) == "models/stories:" + tag; }, 60s))
        << "generation " << gen << " serves " << served_model(n.port);
  }
  n.agent->kill(SIGKILL);
  auto check = cli("HEARTH_HOME=" + home(n.id), "store check");
  EXPECT_EQ(check.code, 0) << check.out;
}

TEST_F(FleetAgent, TrafficGatesJudgeTheBakeWindowAndAModelThatKillsTheNodeIsNotRetried) {
  Node& n = add_node("edge-1");
  ASSERT_TRUE(hearth::testing::wait_tcp(n.port, 15));
  publish_desired(n.id, sign(desired(n, 1, "v1"), controller_key()));
  ASSERT_TRUE(serving(n, "v1")) << node_json(n.id).dump();

  BackgroundLoad load({[&] { return complete(n.port); }});

  // 1. A latency bound that no real request meets: v2 serves on probation for the bake window,
  //    the measured p95 fails the gate, and the node switches back to v1 by itself.
  fleet::DesiredState d2 = desired(n, 2, "v2");
  d2.gates = {*fleet::parse_gate("p95_latency_ms < 0.001")};
  d2.bake_seconds = 3;
  publish_desired(n.id, sign(d2, controller_key()));
  ASSERT_TRUE(wait_node(
      n.id, [](const json& j) { return j.value("state", "") == "failed" && j.value("reported_generation", 0) == 2; },
      90s))
      << node_json(n.id).dump();
  json f = node_json(n.id);
  std::printf("after a failed bake: %s\n", f.dump().c_str());
  EXPECT_NE(f.value("reason", "").find("p95_latency_ms < 0.001"), std::string::npos) << f.dump();
  EXPECT_NE(f.value("reason", "").find("switched back to models/stories:v1"), std::string::npos) << f.dump();
  EXPECT_GT(f["gate_values"].value("bake_requests", 0.0), 0) << f.dump();
  EXPECT_GT(f["gate_values"].value("p95_latency_ms", 0.0), 0.001) << f.dump();
  EXPECT_EQ(f["serving"].value("digest", ""), digests_["v1"]);
  EXPECT_EQ(served_model(n.port), "models/stories:v1");

  // 2. Bounds that real traffic meets: v2 is committed after its bake, with what was measured.
  fleet::DesiredState d3 = desired(n, 3, "v2");
  d3.gates = {*fleet::parse_gate("eval_ppl < 200"), *fleet::parse_gate("error_rate < 0.01"),
              *fleet::parse_gate("p95_latency_ms < 60000"), *fleet::parse_gate("bake_requests >= 10")};
  d3.bake_seconds = 2;
  publish_desired(n.id, sign(d3, controller_key()));
  ASSERT_TRUE(serving(n, "v2")) << node_json(n.id).dump();
  json s = node_json(n.id);
  EXPECT_EQ(s["gate_values"].value("error_rate", 1.0), 0.0) << s.dump();
  EXPECT_GT(s["gate_values"].value("bake_requests", 0.0), 0) << s.dump();
  EXPECT_LT(s["gate_values"].value("eval_ppl", 1e9), 200) << s.dump();
  // Telemetry under load: counters, never content.
  ASSERT_TRUE(wait_node(
      n.id,
      [this](const json& j) {
        const json t = j.value("telemetry", json());
        return t.is_object() && t.value("requests", 0) > 0 && t.value("decode_tok_s", 0.0) > 0 &&
               t.value("state", "") == "serving" && t["serving"].is_object() &&
               t["serving"].value("digest", "") == digests_.at("v2");
      },
      30s))
      << node_json(n.id).dump();
  const json t = node_json(n.id)["telemetry"];
  std::printf("telemetry under load: %s\n", t.dump().c_str());
  EXPECT_GT(t.value("memory_bytes", 0), 1u << 20);
  EXPECT_GT(t.value("disk_free_bytes", 0), 0u);
  EXPECT_GT(t.value("ttft_p95_ms", 0.0), 0.0);
  EXPECT_GE(t.value("ttft_p95_ms", 0.0), t.value("ttft_p50_ms", 0.0));
  EXPECT_EQ(t.value("errors", 1), 0);
  EXPECT_EQ(t["serving"].value("digest", ""), digests_["v2"]);
  for (const char* content : {"prompt", "Once upon", "text", "messages"})
    EXPECT_EQ(t.dump().find(content), std::string::npos) << content;
  load.stop();
  EXPECT_GT(load.ok(), 0);
  EXPECT_EQ(load.failed(), 0) << "requests failed during a bake, a switch or a switch back";

  // 3. The node is stopped during the bake of one generation: SIGTERM (an orderly stop, which
  //    does not count), then kill -9 twice (as under a model that crashes the process): the next
  //    run reports it failed and does not try it again.
  fleet::DesiredState d4 = desired(n, 4, "v1");
  d4.allow_downgrade = true;
  d4.gates = {*fleet::parse_gate("p95_latency_ms < 60000")};
  d4.bake_seconds = 600;
  publish_desired(n.id, sign(d4, controller_key()));
  int accepted = 0;
  for (int run = 1; run <= 3; ++run) {
    const auto on_probation = [run](const json& j) {
      const std::string why = j.value("reason", "");
      return j.value("state", "") == "gating" && why.find("on probation") != std::string::npos &&
             (run < 3 || why.find("(attempt 2 of 2)") != std::string::npos);
    };
    // A restarted run starts applying afresh (its report on connecting replaces the last run's).
    if (run > 1) {
      ASSERT_TRUE(poll_until([&] { return history_count(n.id, "node_event:desired_accepted") >= accepted + 1; }, 60s))
          << "run " << run;
    }
    ASSERT_TRUE(wait_node(n.id, on_probation, 90s)) << "run " << run << ": " << node_json(n.id).dump();
    EXPECT_EQ(served_model(n.port), "models/stories:v1") << "run " << run;
    accepted = history_count(n.id, "node_event:desired_accepted");
    if (run == 1) {  // telemetry keeps going out while the node is busy applying
      const int64_t t0 = node_json(n.id)["telemetry"].value("time", int64_t{0});
      EXPECT_TRUE(wait_node(
          n.id,
          [&](const json& j) {
            const json tel = j.value("telemetry", json());
            return tel.is_object() && tel.value("time", int64_t{0}) > t0 && tel.value("state", "") == "gating";
          },
          10s))
          << node_json(n.id).dump();
    }
    // The first stop is an orderly SIGTERM (it cuts the bake short, does not count as an
    // attempt, and the next run tries again); then two kill -9 (what a crashing model does).
    const auto t0 = std::chrono::steady_clock::now();
    n.agent->kill(run == 1 ? SIGTERM : SIGKILL);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "SIGTERM took too long to stop the agent";
    start_agent(n);
    ASSERT_TRUE(hearth::testing::wait_tcp(n.port, 15));
  }
  ASSERT_TRUE(wait_node(
      n.id,
      [](const json& j) {
        return j.value("state", "") == "failed" && j.value("reason", "").find("stopped 2 times") != std::string::npos;
      },
      90s))
      << node_json(n.id).dump();
  EXPECT_EQ(node_json(n.id)["serving"].value("digest", ""), digests_["v2"]);
  EXPECT_TRUE(poll_until([&] { return complete(n.port) == 200; }, 30s));
  EXPECT_EQ(served_model(n.port), "models/stories:v2");
}

TEST_F(FleetAgent, APeerServesAsLanMirrorWhenTheRegistryIsGone) {
  Node& a = add_node("edge-1");
  Node& b = add_node("edge-2");
  ASSERT_TRUE(hearth::testing::wait_tcp(a.port, 15) && hearth::testing::wait_tcp(b.port, 15));
  publish_desired(a.id, sign(desired(a, 1, "v1"), controller_key()));
  ASSERT_TRUE(serving(a, "v1"));
  // edge-1's store, read-only over the OCI API, for its peers; then the registry goes away.
  int mirror_port = hearth::testing::free_port();
  std::string mirror = "http://127.0.0.1:" + std::to_string(mirror_port);
  Proc lan(home(a.id), {"registry", "serve", "--listen", "127.0.0.1:" + std::to_string(mirror_port)},
           (tmp_ / "mirror.log").string());
  ASSERT_TRUE(hearth::testing::wait_http(mirror, 15));
  registry_.reset();
  fleet::DesiredState d = desired(b, 1, "v1");
  d.sources = {registry_url_, mirror};
  publish_desired(b.id, sign(d, controller_key()));
  ASSERT_TRUE(serving(b, "v1")) << node_json(b.id).dump();
  EXPECT_EQ(complete(b.port), 200);
}

// Runs `ip ARGS`; its exit status.
int ip(const std::string& args) { return std::system(("ip " + args + " >/dev/null 2>&1").c_str()); }

// Runs fn on a thread that has joined network namespace `ns` (sockets it opens live there).
template <class Fn>
auto in_netns(const std::string& ns, Fn fn) -> decltype(fn()) {
  decltype(fn()) result{};
  std::thread t([&] {
    const int fd = open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) return;
    close(fd);
    result = fn();
  });
  t.join();
  return result;
}

// Scenario 5: a node whose only link to the fleet is a veth pair into its own network
// namespace. The broker listens on the host end of the pair.
class FleetAgentNetns : public FleetAgent {
 protected:
  void SetUp() override {
    HEARTH_REQUIRE_SHARED(shared);
    const int id = static_cast<int>(getpid() % 200) + 20;
    ns_ = "hearth-t" + std::to_string(getpid());
    veth_host_ = "hth" + std::to_string(getpid() % 100000);
    veth_ns_ = "htn" + std::to_string(getpid() % 100000);
    host_ip_ = "10.231." + std::to_string(id) + ".1";
    ns_ip_ = "10.231." + std::to_string(id) + ".2";
    (void)ip("netns del " + ns_);
    if (ip("netns add " + ns_) != 0) {
      const char* why = "cannot make a network namespace (`ip netns add` needs root / CAP_SYS_ADMIN)";
      if (hearth::testing::running_in_ci()) FAIL() << why;
      GTEST_SKIP() << why;
    }
    made_ = true;
    ASSERT_EQ(ip("link add " + veth_host_ + " type veth peer name " + veth_ns_), 0);
    ASSERT_EQ(ip("link set " + veth_ns_ + " netns " + ns_), 0);
    ASSERT_EQ(ip("addr add " + host_ip_ + "/30 dev " + veth_host_), 0);
    ASSERT_EQ(ip("link set " + veth_host_ + " up"), 0);
    ASSERT_EQ(ip("netns exec " + ns_ + " ip addr add " + ns_ip_ + "/30 dev " + veth_ns_), 0);
    ASSERT_EQ(ip("netns exec " + ns_ + " ip link set " + veth_ns_ + " up"), 0);
    ASSERT_EQ(ip("netns exec " + ns_ + " ip link set lo up"), 0);
    broker_host_ = host_ip_;
    FleetAgent::SetUp();
  }
  void TearDown() override {
    FleetAgent::TearDown();
    if (made_) (void)ip("netns del " + ns_);  // takes the veth pair with it
  }
  // The link, cut and restored from inside the node's namespace.
  void link(bool up) { ASSERT_EQ(ip("netns exec " + ns_ + " ip link set " + veth_ns_ + (up ? " up" : " down")), 0); }

  std::string ns_, veth_host_, veth_ns_, host_ip_, ns_ip_;
  bool made_ = false;
};

TEST_F(FleetAgentNetns, ANodeCutOffKeepsServingGoesOfflineAndReconcilesWhenTheLinkReturns) {
  auto e = enroll("edge-ns", token("--labels site=plant"), ca_sha_);
  ASSERT_EQ(e.code, 0) << e.out;
  const std::string env = "HEARTH_HOME=" + home("edge-ns");
  ASSERT_EQ(cli(env, "trust add " + (tmp_ / "acme.pub").string() + " --models 'models/*' --name acme").code, 0);
  // The docker-registry is on the test's loopback, out of the node's reach: the publisher's store
  // is served on the host end of the link instead (`hearth registry serve`, as a LAN mirror).
  const int mirror_port = hearth::testing::free_port();
  const std::string mirror = "http://" + host_ip_ + ":" + std::to_string(mirror_port);
  Proc lan((tmp_ / "publisher").string(),
           {"registry", "serve", "--listen", host_ip_ + ":" + std::to_string(mirror_port)},
           (tmp_ / "mirror.log").string());
  ASSERT_TRUE(hearth::testing::wait_http(mirror, 15));
  const auto via_link = [&](uint64_t generation, const std::string& tag) {
    fleet::DesiredState d = desired(*nodes_.back(), generation, tag);
    d.sources = {mirror};
    return sign(d, controller_key());
  };
  auto owned = std::make_unique<Node>();
  Node& n = *owned;
  nodes_.push_back(std::move(owned));
  n.id = "edge-ns";
  n.port = hearth::testing::free_port();
  n.netns = ns_;
  n.extra_args = {"--keepalive", "5"};
  start_agent(n);
  const auto local = [&](const std::function<long()>& fn) { return in_netns(ns_, fn); };
  ASSERT_TRUE(
      poll_until([&] { return local([&] { return static_cast<long>(hearth::testing::wait_tcp(n.port, 1)); }); }, 15s));
  publish_desired(n.id, via_link(1, "v1"));
  ASSERT_TRUE(serving(n, "v1")) << node_json(n.id).dump();
  EXPECT_EQ(node_json(n.id).value("presence", ""), "online");

  // Requests from the node's own side of the link, all along.
  BackgroundLoad load({[&] { return complete(n.port); }}, 20ms, [&](const std::function<void()>& loop) {
    in_netns(ns_, [&] {
      loop();
      return 0;
    });
  });

  // Cut: the fleet sees the node go offline (its last will, after 1.5 keep-alives), and the
  // node goes on answering with v1.
  link(false);
  ASSERT_TRUE(wait_node(
      n.id, [](const json& j) { return j.value("presence", "") == "offline"; }, 30s))
      << node_json(n.id).dump();
  const int ok_at_cut = load.ok();
  // A new desired state while it is away: retained by the broker, not yet seen by the node.
  publish_desired(n.id, via_link(2, "v2"));
  std::this_thread::sleep_for(3s);
  EXPECT_GT(load.ok(), ok_at_cut) << "the node stopped answering when its link was cut";
  EXPECT_EQ(in_netns(ns_, [&] { return served_model(n.port); }), "models/stories:v1");
  EXPECT_EQ(node_json(n.id).value("presence", ""), "offline");
  // Restarted twice while cut off (kill -9 each time): it comes back serving v1 on its own, and
  // the event it sends at each start waits in its on-disk outbox for the link; the second kill
  // loses nothing of the first start's.
  const int started_before = history_count(n.id, "node_event:started");
  EXPECT_GE(started_before, 1);
  for (int restart = 0; restart < 2; ++restart) {
    load.pause(true);
    std::this_thread::sleep_for(100ms);
    n.agent->kill(SIGKILL);
    start_agent(n);
    EXPECT_TRUE(poll_until([&] { return local([&] { return complete(n.port); }) == 200; }, 30s));
    load.pause(false);
  }
  EXPECT_EQ(in_netns(ns_, [&] { return served_model(n.port); }), "models/stories:v1");
  EXPECT_EQ(history_count(n.id, "node_event:started"), started_before);

  // The link returns: the node reconnects, pulls v2 over it and switches.
  link(true);
  ASSERT_TRUE(serving(n, "v2")) << node_json(n.id).dump();
  EXPECT_EQ(node_json(n.id).value("presence", ""), "online");
  EXPECT_EQ(in_netns(ns_, [&] { return served_model(n.port); }), "models/stories:v2");
  EXPECT_TRUE(poll_until([&] { return history_count(n.id, "node_event:started") == started_before + 2; }, 15s))
      << "the events queued while the link was cut did not arrive: " << history_count(n.id, "node_event:started")
      << " started events, " << started_before << " before the cut";
  std::this_thread::sleep_for(2s);  // a resend (PUBACK lost) would show up as a third
  EXPECT_EQ(history_count(n.id, "node_event:started"), started_before + 2);
  load.stop();
  std::printf("answered %d completions on the node's side through the cut and the switch\n", load.ok());
  EXPECT_EQ(load.failed(), 0);
}

}  // namespace
}  // namespace hearth::fleet_test
