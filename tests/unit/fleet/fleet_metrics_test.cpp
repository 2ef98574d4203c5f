// GET /metrics's text: the exposition is parsed here by the rules of the Prometheus text format
// 0.0.4 (HELP and TYPE before a family's samples, each family contiguous, label values escaped
// with \\ \" \n), and every value is checked against the rows this test put in the database.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hearth/fleet/fleet_db.h"
#include "hearth/fleet/fleet_metrics.h"
#include "hearth/fleet/rollout.h"
#include "shared_data.h"

namespace hearth::fleet {
namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Parsed {
  std::vector<Sample> samples;
  std::map<std::string, std::string> type;  // family -> type
  std::string error;                        // the first rule broken, if any
  // The value of the one sample of `name` whose labels include `match`; NaN when none, -1e300 when several.
  double get(const std::string& name, const std::map<std::string, std::string>& match) const {
    double found = std::nan("");
    int n = 0;
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool ok = true;
      for (const auto& [k, v] : match) ok &= s.labels.count(k) && s.labels.at(k) == v;
      if (ok) {
        found = s.value;
        ++n;
      }
    }
    return n > 1 ? -1e300 : found;
  }
  size_t count(const std::string& prefix) const {
    size_t n = 0;
    for (const auto& s : samples) n += s.name.rfind(prefix, 0) == 0;
    return n;
  }
};

Parsed parse(const std::string& text) {
  Parsed p;
  std::set<std::string> done;  // families whose samples have ended
  std::string current;         // the family of the last HELP/TYPE
  std::set<std::string> helped;
  auto fail = [&](const std::string& why) {
    if (p.error.empty()) p.error = why;
  };
  if (text.empty() || text.back() != '\n') fail("the text does not end with a newline");
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' '));
      if (name != current) {
        if (!current.empty()) done.insert(current);
        if (done.count(name)) fail("family " + name + " appears twice");
        current = name;
      }
      if (line[2] == 'H') helped.insert(name);
      if (line[2] == 'T') p.type[name] = rest.substr(rest.find(' ') + 1);
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (s.name != current) fail("sample " + s.name + " outside its family's block");
    if (!helped.count(s.name) || !p.type.count(s.name)) fail("sample " + s.name + " without HELP and TYPE first");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          fail("bad label in: " + line);
          break;
        }
        std::string key = line.substr(i, eq - i), value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            char c = line[++j];
            if (c == 'n') {
              value += '\n';
            } else if (c == '\\' || c == '"') {
              value += c;
            } else {
              fail("bad escape in: " + line);
            }
          } else {
            value += line[j];
          }
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') {
      fail("no value in: " + line);
      continue;
    }
    std::string v = line.substr(i + 1);
    char* endp = nullptr;
    s.value = std::strtod(v.c_str(), &endp);
    if (v.empty() || *endp != '\0') fail("bad value in: " + line);
    p.samples.push_back(std::move(s));
  }
  return p;
}

class FleetMetrics : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hearth::testing::make_temp_dir("hearth-metrics");
    auto db = FleetDb::open("sqlite:" + (dir_ / "fleet.db").string());
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(*db);
  }
  void TearDown() override {
    db_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void node(const std::string& id, bool online, const std::string& state, const std::string& ref,
            const std::string& digest, const std::string& telemetry = "{}") {
    NodeRecord n;
    n.id = id;
    n.enrolled_at = 100;
    ASSERT_TRUE(db_->upsert_node(n).ok());
    ASSERT_TRUE(db_->set_presence(id, online, 200).ok());
    n.online = online;
    n.state = state;
    n.serving_reference = ref;
    n.serving_digest = digest;
    n.last_seen = 200;
    n.reported_seq = 1;
    ASSERT_TRUE(db_->set_reported(n).ok());
    if (telemetry != "{}") {
      ASSERT_TRUE(db_->set_telemetry(id, telemetry, 250).ok());
    }
    ASSERT_TRUE(db_->set_presence(id, online, 260).ok());
  }
  void rollout(const std::string& id, const std::string& state, int64_t created, int64_t batch,
               const std::string& model_ref, const std::vector<std::string>& gates) {
    RolloutSpec spec;
    spec.model = {model_ref, "sha256:" + std::string(64, 'c')};
    spec.gates = gates;
    spec.sources = {"http://127.0.0.1:9"};
    RolloutRecord r;
    r.id = id;
    r.created = created;
    r.state = state;
    r.spec_json = rollout_spec_to_json(spec);
    r.current_batch = batch;
    ASSERT_TRUE(db_->put_rollout(r).ok());
  }
  void rollout_node(const std::string& rollout, const std::string& node, int64_t batch, const std::string& state,
                    const std::string& gates = "{}") {
    RolloutNodeRecord n;
    n.rollout_id = rollout;
    n.node = node;
    n.batch = batch;
    n.state = state;
    n.gate_values_json = gates;
    ASSERT_TRUE(db_->put_rollout_node(n).ok());
  }
  Parsed render(bool per_node) {
    auto text = render_fleet_metrics(*db_, MetricsOptions{per_node});
    EXPECT_TRUE(text.ok()) << text.status().message();
    text_ = text.ok() ? *text : "";
    return parse(text_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<FleetDb> db_;
  std::string text_;
};

TEST_F(FleetMetrics, CountsAndGateValuesMatchTheDatabase) {
  const std::string d1 = "sha256:" + std::string(64, '1'), d2 = "sha256:" + std::string(64, '2');
  // A reference with every character the format escapes.
  const std::string odd = "acme/\"odd\"\\model\nv3";
  node("n1", true, "serving", "acme/m:v1", d1);
  node("n2", true, "serving", "acme/m:v1", d1);
  node("n3", false, "failed", "acme/m:v1", d1);
  node("n4", true, "gating", odd, d2);
  node("n5", false, "", "", "");
  rollout("r-000000000001", "running", 50, 1, "acme/m:v2", {"decode_tok_s > 5", "eval_ppl < 20"});
  rollout_node("r-000000000001", "n1", 0, "serving", R"({"decode_tok_s": 10, "eval_ppl": 4})");
  rollout_node("r-000000000001", "n2", 1, "gating", R"({"decode_tok_s": 30})");
  rollout_node("r-000000000001", "n3", 1, "failed", R"({"decode_tok_s": 2, "eval_ppl": 30})");
  rollout_node("r-000000000001", "n4", 2, "pending");
  // Finished ones: only the kMaxFinishedRollouts most recent are shown.
  for (int i = 0; i < 7; ++i) rollout(fmt::format("r-10000000000{}", i), "succeeded", 10 + i, 2, "acme/old", {});

  Parsed p = render(false);
  ASSERT_TRUE(p.error.empty()) << p.error << "\n" << text_;
  EXPECT_EQ(p.type["hearth_fleet_nodes"], "gauge");
  EXPECT_EQ(p.get("hearth_fleet_nodes", {{"presence", "online"}, {"state", "serving"}}), 2);
  EXPECT_EQ(p.get("hearth_fleet_nodes", {{"presence", "offline"}, {"state", "failed"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_nodes", {{"presence", "online"}, {"state", "gating"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_nodes", {{"presence", "offline"}, {"state", "none"}}), 1) << text_;
  EXPECT_EQ(p.get("hearth_fleet_nodes", {{"presence", "online"}, {"state", "failed"}}), 0);  // zeros are kept
  EXPECT_EQ(p.get("hearth_fleet_nodes_serving", {{"reference", "acme/m:v1"}, {"digest", d1}}), 3);
  EXPECT_EQ(p.get("hearth_fleet_nodes_serving", {{"reference", odd}, {"digest", d2}}), 1);
  EXPECT_NE(text_.find(R"(reference="acme/\"odd\"\\model\nv3")"), std::string::npos) << text_;

  EXPECT_EQ(p.get("hearth_fleet_rollouts", {{"state", "running"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_rollouts", {{"state", "succeeded"}}), 7);
  EXPECT_EQ(p.get("hearth_fleet_rollouts", {{"state", "aborted"}}), 0);
  const std::map<std::string, std::string> r1 = {{"rollout", "r-000000000001"}};
  EXPECT_EQ(p.get("hearth_fleet_rollout_batch", r1), 2);  // current_batch 1, shown from 1
  EXPECT_EQ(p.get("hearth_fleet_rollout_batches", r1), 3);
  EXPECT_EQ(p.get("hearth_fleet_rollout_nodes", {{"rollout", "r-000000000001"}, {"state", "gating"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_rollout_nodes", {{"rollout", "r-000000000001"}, {"state", "failed"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_rollout_nodes", {{"rollout", "r-000000000001"}, {"state", "pending"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_rollout_info", {{"rollout", "r-000000000001"}, {"reference", "acme/m:v2"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_rollout_gate_threshold", {{"rollout", "r-000000000001"}, {"metric", "eval_ppl"}}),
            20);
  // decode_tok_s over n1, n2, n3: 10, 30, 2; eval_ppl over n1, n3: 4, 30.
  EXPECT_EQ(p.get("hearth_fleet_rollout_gate_value", {{"metric", "decode_tok_s"}, {"stat", "min"}}), 2);
  EXPECT_EQ(p.get("hearth_fleet_rollout_gate_value", {{"metric", "decode_tok_s"}, {"stat", "max"}}), 30);
  EXPECT_EQ(p.get("hearth_fleet_rollout_gate_value", {{"metric", "decode_tok_s"}, {"stat", "mean"}}), 14);
  EXPECT_EQ(p.get("hearth_fleet_rollout_gate_value", {{"metric", "eval_ppl"}, {"stat", "mean"}}), 17);
  EXPECT_EQ(p.get("hearth_fleet_rollout_gate_measured", {{"metric", "eval_ppl"}}), 2);
  // Bounded: 1 running + the 5 most recent of 7 finished; r-100000000000 and ...1 are the oldest.
  size_t info = 0;
  for (const auto& s : p.samples) info += s.name == "hearth_fleet_rollout_info";
  EXPECT_EQ(info, 1 + kMaxFinishedRollouts);
  EXPECT_TRUE(std::isnan(p.get("hearth_fleet_rollout_info", {{"rollout", "r-100000000000"}})));
  EXPECT_TRUE(std::isnan(p.get("hearth_fleet_rollout_info", {{"rollout", "r-100000000001"}})));
  EXPECT_EQ(p.get("hearth_fleet_rollout_info", {{"rollout", "r-100000000006"}}), 1);
  // No per-node series unless asked for.
  EXPECT_EQ(p.count("hearth_fleet_node_"), 0u);
}

TEST_F(FleetMetrics, PerNodeSeriesWhenAskedFor) {
  node("n1", true, "serving", "acme/m:v1", "sha256:" + std::string(64, '1'),
       R"({"decode_tok_s": 12.5, "ttft_p95_ms": 250, "requests": 7, "errors": 1, "memory_bytes": 1048576})");
  node("n2", false, "", "", "");
  rollout("r-000000000001", "running", 50, 0, "acme/m:v2", {"decode_tok_s > 5"});
  rollout_node("r-000000000001", "n1", 0, "gating", R"({"decode_tok_s": 9})");
  Parsed p = render(true);
  ASSERT_TRUE(p.error.empty()) << p.error << "\n" << text_;
  EXPECT_EQ(p.get("hearth_fleet_node_online", {{"node", "n1"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_node_online", {{"node", "n2"}}), 0);
  EXPECT_EQ(p.get("hearth_fleet_node_state", {{"node", "n1"}, {"state", "serving"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_node_state", {{"node", "n2"}, {"state", "none"}}), 1);
  EXPECT_EQ(p.get("hearth_fleet_node_gate_value", {{"node", "n1"}, {"metric", "decode_tok_s"}}), 9);
  EXPECT_EQ(p.get("hearth_fleet_node_decode_tokens_per_second", {{"node", "n1"}}), 12.5);
  EXPECT_EQ(p.get("hearth_fleet_node_ttft_p95_seconds", {{"node", "n1"}}), 0.25);
  EXPECT_EQ(p.get("hearth_fleet_node_requests_total", {{"node", "n1"}}), 7);
  EXPECT_EQ(p.type["hearth_fleet_node_requests_total"], "counter");
  EXPECT_EQ(p.get("hearth_fleet_node_resident_memory_bytes", {{"node", "n1"}}), 1048576);
  EXPECT_TRUE(std::isnan(p.get("hearth_fleet_node_decode_tokens_per_second", {{"node", "n2"}})));  // no telemetry
}

TEST(FleetMetricsEscape, LabelValues) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\"b"), "a\\\"b");
  EXPECT_EQ(escape_label_value("a\\b"), "a\\\\b");
  EXPECT_EQ(escape_label_value("a\nb"), "a\\nb");
}

}  // namespace
}  // namespace hearth::fleet
