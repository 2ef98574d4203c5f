// The fleet's wire protocol: topics, gates, payload validation and signed desired states.
#include "hearth/fleet/protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hearth/core/base64.h"
#include "hearth/core/sha256.h"
#include "hearth/trust/signing_key.h"

namespace hearth::fleet {
namespace {

using json = nlohmann::json;

DesiredState sample_desired() {
  DesiredState d;
  d.fleet = "plant-7";
  d.node = "edge-01";
  d.generation = 42;
  d.issued_at = 1796000000;
  d.rollout_id = "r-1";
  d.model = {"127.0.0.1:5000/models/tiny:v2", "sha256:" + std::string(64, 'a')};
  d.sources = {"http://127.0.0.1:5000", "http://10.0.0.2:9000"};
  d.gates = {*parse_gate("eval_ppl < 40"), *parse_gate("decode_tok_s>=20")};
  d.eval_text = "Once upon a time there was a little robot.";
  d.eval_text_digest = "sha256:" + sha256_hex(std::as_bytes(std::span(d.eval_text.data(), d.eval_text.size())));
  d.bake_seconds = 30;
  d.allow_downgrade = true;
  return d;
}

TEST(FleetTopics, NamesAndParsing) {
  EXPECT_EQ(node_topic("plant-7", "edge-01", NodeTopic::kDesired), "hearth/v1/plant-7/nodes/edge-01/desired");
  EXPECT_EQ(all_nodes_topic("plant-7", NodeTopic::kReported), "hearth/v1/plant-7/nodes/+/reported");
  auto p = parse_node_topic("plant-7", "hearth/v1/plant-7/nodes/edge-01/telemetry");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->node, "edge-01");
  EXPECT_EQ(p->kind, NodeTopic::kTelemetry);
  EXPECT_FALSE(parse_node_topic("plant-7", "hearth/v1/other/nodes/edge-01/telemetry"));
  EXPECT_FALSE(parse_node_topic("plant-7", "hearth/v1/plant-7/nodes/EDGE/telemetry"));
  EXPECT_FALSE(parse_node_topic("plant-7", "hearth/v1/plant-7/nodes/edge-01/secrets"));
  EXPECT_FALSE(parse_node_topic("plant-7", "hearth/v1/plant-7/nodes/hearth-controller/reported"));
  EXPECT_FALSE(parse_node_topic("plant-7", "hearth/v1/plant-7/nodes/edge-01"));
}

TEST(FleetGates, ParseAndEvaluate) {
  auto g = parse_gate("eval_ppl < 40");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->metric, "eval_ppl");
  EXPECT_EQ(g->op, "<");
  EXPECT_DOUBLE_EQ(g->value, 40);
  EXPECT_TRUE(g->passes(39.9));
  EXPECT_FALSE(g->passes(40));
  EXPECT_FALSE(g->passes(std::nan("")));
  auto ge = parse_gate("  decode_tok_s >= 20.5 ");
  ASSERT_TRUE(ge.ok());
  EXPECT_TRUE(ge->passes(20.5));
  EXPECT_FALSE(ge->passes(20.4));
  auto le = parse_gate("ttft_ms<=250");
  ASSERT_TRUE(le.ok());
  EXPECT_TRUE(le->passes(250));
  for (const char* bad : {"eval_ppl", "eval_ppl < ", "bogus < 3", "eval_ppl < 3x", "eval_ppl = 3", "< 3"}) {
    auto r = parse_gate(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("gate"), std::string::npos);
  }
  EXPECT_NE(parse_gate("bogus < 3").status().message().find("unknown metric 'bogus'"), std::string::npos);
}

TEST(FleetDesired, JsonRoundTrip) {
  DesiredState d = sample_desired();
  auto back = desired_from_json(desired_to_json(d));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->fleet, d.fleet);
  EXPECT_EQ(back->node, d.node);
  EXPECT_EQ(back->generation, 42u);
  EXPECT_EQ(back->model.reference, d.model.reference);
  EXPECT_EQ(back->model.digest, d.model.digest);
  EXPECT_EQ(back->sources, d.sources);
  ASSERT_EQ(back->gates.size(), 2u);
  EXPECT_EQ(back->gates[1].metric, "decode_tok_s");
  EXPECT_EQ(back->gates[1].op, ">=");
  EXPECT_EQ(back->eval_text, d.eval_text);
  EXPECT_EQ(back->bake_seconds, 30);
  EXPECT_TRUE(back->allow_downgrade);
}

TEST(FleetDesired, SignedByTheControllerVerifies) {
  auto key = trust::PrivateKey::generate(trust::KeyAlgorithm::kEcdsaP256);
  ASSERT_TRUE(key.ok());
  auto env = sign_desired(sample_desired(), *key);
  ASSERT_TRUE(env.ok());
  auto d = verify_desired(*env, key->public_key());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->generation, 42u);
}

TEST(FleetDesired, RefusesOtherKeysAndTampering) {
  auto controller = trust::PrivateKey::generate(trust::KeyAlgorithm::kEcdsaP256);
  auto intruder = trust::PrivateKey::generate(trust::KeyAlgorithm::kEcdsaP256);
  ASSERT_TRUE(controller.ok() && intruder.ok());
  // Signed by someone else (e.g. anyone who can publish on the broker).
  auto forged = sign_desired(sample_desired(), *intruder);
  ASSERT_TRUE(forged.ok());
  auto r = verify_desired(*forged, controller->public_key());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);

  // A genuine envelope whose payload was changed after signing.
  auto env = sign_desired(sample_desired(), *controller);
  ASSERT_TRUE(env.ok());
  json j = json::parse(*env);
  DesiredState evil = sample_desired();
  evil.model.digest = "sha256:" + std::string(64, 'b');
  j["payload"] = base64_encode(desired_to_json(evil));
  r = verify_desired(j.dump(), controller->public_key());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);

  // Unsigned, wrong payload type, broken base64, not JSON.
  json unsigned_env = json::parse(*env);
  unsigned_env["signatures"] = json::array();
  EXPECT_EQ(verify_desired(unsigned_env.dump(), controller->public_key()).status().code(), ErrorCode::kInvalidArgument);
  json wrong_type = json::parse(*env);
  wrong_type["payloadType"] = "application/vnd.in-toto+json";
  EXPECT_FALSE(verify_desired(wrong_type.dump(), controller->public_key()).ok());
  json bad_b64 = json::parse(*env);
  bad_b64["payload"] = "%%%";
  EXPECT_FALSE(verify_desired(bad_b64.dump(), controller->public_key()).ok());
  EXPECT_FALSE(verify_desired("{not json", controller->public_key()).ok());
  EXPECT_FALSE(verify_desired(std::string(2 << 20, '['), controller->public_key()).ok());
}

TEST(FleetDesired, HostilePayloadsGetANamedError) {
  json good = json::parse(desired_to_json(sample_desired()));
  auto with = [&](const char* key, json value) {
    json j = good;
    if (value.is_null())
      j.erase(key);
    else
      j[key] = value;
    return desired_from_json(j.dump());
  };
  auto expect_error = [](const Result<DesiredState>& r, std::string_view needle) {
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  expect_error(with("schema", "hearth.fleet.desired/v2"), "schema 'hearth.fleet.desired/v2' is not the supported");
  expect_error(with("node", nullptr), "'node' is missing");
  expect_error(with("node", "../etc"), "'node' is not a node id");
  expect_error(with("node", "hearth-controller"), "'node' is not a node id");
  expect_error(with("generation", -1), "'generation' must be a non-negative integer");
  expect_error(with("generation", "7"), "'generation' must be a non-negative integer");
  expect_error(with("gates", json::array({"rm -rf < 3"})), "unknown metric");
  expect_error(with("sources", json::array({1})), "'sources'");
  expect_error(with("eval_text", "changed"), "eval_text does not match eval_text_digest");
  expect_error(with("bake_seconds", 1e12), "'bake_seconds'");
  expect_error(with("model", json{{"reference", "x"}, {"digest", "md5:00"}}), "'model.digest' is not sha256");
  expect_error(with("eval_text", std::string(kMaxEvalTextBytes + 1, 'a')), "'eval_text' is longer than 65536 bytes");
  expect_error(desired_from_json(std::string(300 << 10, ' ')), "more than the");
  std::string deep(100, '[');
  expect_error(desired_from_json(deep), "nested more than");
  expect_error(desired_from_json("[]"), "not a JSON object");
  expect_error(desired_from_json("\xff\xfe"), "not valid JSON");
}

TEST(FleetReported, RoundTripAndValidation) {
  ReportedState r;
  r.node = "edge-02";
  r.generation = 7;
  r.state = NodeState::kRolledBack;
  r.reason = "gate eval_ppl < 40 failed: 812.5";
  r.serving = {"reg/m:v2", "sha256:" + std::string(64, 'c')};
  r.last_known_good = r.serving;
  r.gate_values = {{"eval_ppl", 812.5}, {"decode_tok_s", 31.25}};
  r.time = 1796000001;
  auto back = reported_from_json(reported_to_json(r));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->state, NodeState::kRolledBack);
  EXPECT_EQ(back->reason, r.reason);
  EXPECT_DOUBLE_EQ(back->gate_values.at("eval_ppl"), 812.5);
  json j = json::parse(reported_to_json(r));
  j["state"] = "exploded";
  EXPECT_NE(reported_from_json(j.dump()).status().message().find("'state' is not a node state"), std::string::npos);
  j = json::parse(reported_to_json(r));
  j["gate_values"]["free_money"] = 1;
  EXPECT_FALSE(reported_from_json(j.dump()).ok());
  j = json::parse(reported_to_json(r));
  j["reason"] = std::string(5000, 'x');
  EXPECT_FALSE(reported_from_json(j.dump()).ok());
}

TEST(FleetReported, DeclaredLabelsRoundTripAndBadOnesAreNamed) {
  ReportedState r;
  r.node = "edge-02";
  r.labels = {{"gpu", "none"}, {"site", "north"}};
  auto back = reported_from_json(reported_to_json(r));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->labels, r.labels);
  for (const char* bad : {"gpu", "gpu=", "g pu=x", "gpu=<script>"}) {
    json j = json::parse(reported_to_json(r));
    j["labels"] = bad;
    auto st = reported_from_json(j.dump());
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.status().message().find("reported state"), std::string::npos) << st.status().message();
  }
  json j = json::parse(reported_to_json(r));
  j["labels"] = 7;
  EXPECT_FALSE(reported_from_json(j.dump()).ok());
  std::string many;
  for (int i = 0; i < 33; ++i) many += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
  j["labels"] = many;
  EXPECT_NE(reported_from_json(j.dump()).status().message().find("more than 32 labels"), std::string::npos);
}

TEST(FleetTelemetryEventsPresence, RoundTrip) {
  Telemetry t;
  t.node = "edge-03";
  t.time = 5;
  t.state = NodeState::kServing;
  t.decode_tok_s = 12.5;
  t.requests = 1000;
  t.errors = 3;
  auto tb = telemetry_from_json(telemetry_to_json(t));
  ASSERT_TRUE(tb.ok()) << tb.status().to_string();
  EXPECT_EQ(tb->requests, 1000u);
  EXPECT_DOUBLE_EQ(tb->decode_tok_s, 12.5);
  json tj = json::parse(telemetry_to_json(t));
  tj["decode_tok_s"] = -1;
  EXPECT_FALSE(telemetry_from_json(tj.dump()).ok());

  Event e{"edge-03", 6, 11, "rolled_back", "gate failed"};
  auto eb = event_from_json(event_to_json(e));
  ASSERT_TRUE(eb.ok());
  EXPECT_EQ(eb->seq, 11u);
  EXPECT_EQ(eb->type, "rolled_back");

  auto pb = presence_from_json(presence_to_json({"edge-03", false}));
  ASSERT_TRUE(pb.ok());
  EXPECT_FALSE(pb->online);
  EXPECT_FALSE(presence_from_json(R"({"schema":"hearth.fleet.presence/v1","node":"edge-03","online":"yes"})").ok());
}

}  // namespace
}  // namespace hearth::fleet
