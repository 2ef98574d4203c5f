// The ONNX loader against hand-built models: what it accepts, how it orders the graph, and the
// clear errors it gives hostile files (checks before allocation, confined external data,
// undefined names, cycles, duplicate definitions).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "hearth/onnx/loader.h"
#include "hearth/onnx/session.h"
#include "onnx.pb.h"

namespace hearth::onnx {
namespace {
namespace fs = std::filesystem;

::onnx::ValueInfoProto value_info(const std::string& name, std::vector<int64_t> dims, int elem = 1) {
  ::onnx::ValueInfoProto v;
  v.set_name(name);
  auto* tt = v.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* sh = tt->mutable_shape();
  for (int64_t d : dims) {
    if (d < 0) sh->add_dim()->set_dim_param("N");
    else sh->add_dim()->set_dim_value(d);
  }
  return v;
}

::onnx::NodeProto* add_node(::onnx::GraphProto* g, const std::string& op, std::vector<std::string> in,
                            std::vector<std::string> out, const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& s : in) n->add_input(s);
  for (auto& s : out) n->add_output(s);
  return n;
}

::onnx::ModelProto base_model(int64_t opset = 13) {
  ::onnx::ModelProto m;
  m.set_ir_version(8);
  auto* os = m.add_opset_import();
  os->set_domain("");
  os->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("g");
  *g->add_input() = value_info("x", {-1, 3});
  *g->add_output() = value_info("y", {-1, 3});
  return m;
}

Result<Model> parse(const ::onnx::ModelProto& m, const std::string& dir = "") {
  std::string bytes;
  EXPECT_TRUE(m.SerializeToString(&bytes));
  LoadOptions o;
  o.external_data_dir = dir;
  return parse_model(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())), o);
}

void expect_error(const Result<Model>& r, ErrorCode code, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().to_string();
}

TEST(OnnxLoader, SortsNodesTopologicallyAndKeepsDeclarations) {
  auto m = base_model();
  auto* g = m.mutable_graph();
  // Listed consumer-first: the loader must put the producer first.
  add_node(g, "Relu", {"t"}, {"y"}, "second");
  add_node(g, "Neg", {"x"}, {"t"}, "first");
  auto r = parse(m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->graph.nodes.size(), 2u);
  EXPECT_EQ(r->graph.nodes[0].name, "first");
  EXPECT_EQ(r->graph.nodes[1].name, "second");
  EXPECT_EQ(r->opset, 13);
  ASSERT_EQ(r->graph.inputs.size(), 1u);
  EXPECT_EQ(r->graph.inputs[0].dtype, DType::kFloat);
  EXPECT_EQ(r->graph.inputs[0].dims, (std::vector<int64_t>{-1, 3}));
  EXPECT_EQ(r->graph.inputs[0].dim_names[0], "N");
}

TEST(OnnxLoader, ConstantNodesBecomeInitializers) {
  auto m = base_model();
  auto* g = m.mutable_graph();
  auto* c = add_node(g, "Constant", {}, {"k"}, "c");
  auto* a = c->add_attribute();
  a->set_name("value_floats");
  a->set_type(::onnx::AttributeProto::FLOATS);
  a->add_floats(1.5f);
  a->add_floats(-2.0f);
  a->add_floats(4.0f);
  add_node(g, "Add", {"x", "k"}, {"y"});
  auto r = parse(m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->graph.nodes.size(), 1u);
  auto it = r->graph.initializers.find("k");
  ASSERT_NE(it, r->graph.initializers.end());
  EXPECT_EQ(it->second.shape(), (Shape{3}));
  EXPECT_EQ(it->second.data<float>()[1], -2.0f);
}

TEST(OnnxLoader, RefusesCyclesUndefinedNamesAndDuplicates) {
  {
    auto m = base_model();
    auto* g = m.mutable_graph();
    add_node(g, "Add", {"x", "b"}, {"a"}, "n1");
    add_node(g, "Relu", {"a"}, {"b"}, "n2");
    add_node(g, "Identity", {"a"}, {"y"}, "n3");
    expect_error(parse(m), ErrorCode::kInvalidArgument, "cycle");
  }
  {
    auto m = base_model();
    add_node(m.mutable_graph(), "Relu", {"nowhere"}, {"y"}, "lost");
    expect_error(parse(m), ErrorCode::kInvalidArgument, "node 'lost' (Relu): input 'nowhere' is not defined");
  }
  {
    auto m = base_model();
    add_node(m.mutable_graph(), "Relu", {"x"}, {"y"}, "a");
    add_node(m.mutable_graph(), "Neg", {"x"}, {"y"}, "b");
    expect_error(parse(m), ErrorCode::kInvalidArgument, "value 'y' is defined twice");
  }
  {
    auto m = base_model();
    add_node(m.mutable_graph(), "Relu", {"x"}, {"z"}, "a");
    expect_error(parse(m), ErrorCode::kInvalidArgument, "output 'y' is not defined");
  }
}

TEST(OnnxLoader, ChecksTensorSizesBeforeAllocating) {
  {
    auto m = base_model();
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("w");
    t->set_data_type(1);
    t->add_dims(int64_t{1} << 40);
    t->add_dims(int64_t{1} << 40);
    add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
    expect_error(parse(m), ErrorCode::kOutOfRange, "more than");
  }
  {
    auto m = base_model();
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("w");
    t->set_data_type(1);
    t->add_dims(4);
    t->set_raw_data(std::string(12, '\0'));  // 3 floats for 4
    add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
    expect_error(parse(m), ErrorCode::kInvalidArgument, "initializer 'w': shape [4] of float32 needs 16 bytes but raw_data holds 12");
  }
  {
    auto m = base_model();
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("w");
    t->set_data_type(1);
    t->add_dims(-2);
    add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
    expect_error(parse(m), ErrorCode::kInvalidArgument, "negative dimension");
  }
  {
    auto m = base_model();
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("s");
    t->set_data_type(8);  // string
    add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
    expect_error(parse(m), ErrorCode::kUnimplemented, "initializer 's': element type 8 is not supported");
  }
  {
    auto m = base_model();
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("w");
    t->set_data_type(1);
    t->add_dims(3);
    t->add_float_data(1.0f);  // 1 value for 3
    add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
    expect_error(parse(m), ErrorCode::kInvalidArgument, "needs 3 elements but float_data holds 1");
  }
}

TEST(OnnxLoader, RefusesGarbageAndTruncatedFiles) {
  std::string junk = "this is not a protobuf \xff\xff\xff\xff";
  auto r = parse_model(std::as_bytes(std::span<const char>(junk.data(), junk.size())), {});
  expect_error(r, ErrorCode::kInvalidArgument, "not a valid ONNX model");

  auto m = base_model();
  add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
  std::string bytes;
  ASSERT_TRUE(m.SerializeToString(&bytes));
  bytes.resize(bytes.size() - 5);
  auto t = parse_model(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())), {});
  EXPECT_FALSE(t.ok());
}

class ExternalData : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / fmt::format("hearth_onnx_ext_{}", ::getpid());
    fs::remove_all(root_);
    fs::create_directories(root_ / "model");
    std::ofstream(root_ / "model" / "w.bin", std::ios::binary).write("\0\0\x80\x3f\0\0\0\x40", 8);  // 1.0f, 2.0f
    std::ofstream(root_ / "secret.bin", std::ios::binary).write("\0\0\x80\x3f\0\0\0\x40", 8);
    fs::create_symlink(root_ / "secret.bin", root_ / "model" / "link.bin");
  }
  void TearDown() override { fs::remove_all(root_); }

  ::onnx::ModelProto with_external(const std::string& location, const std::string& offset = "") {
    auto m = base_model();
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("w");
    t->set_data_type(1);
    t->add_dims(2);
    t->set_data_location(::onnx::TensorProto::EXTERNAL);
    auto* e = t->add_external_data();
    e->set_key("location");
    e->set_value(location);
    if (!offset.empty()) {
      auto* o = t->add_external_data();
      o->set_key("offset");
      o->set_value(offset);
    }
    add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
    return m;
  }
  fs::path root_;
};

TEST_F(ExternalData, ReadsFilesInsideTheModelDirectoryOnly) {
  const std::string dir = (root_ / "model").string();
  auto ok = parse(with_external("w.bin"), dir);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->graph.initializers.at("w").data<float>()[1], 2.0f);

  expect_error(parse(with_external("../secret.bin"), dir), ErrorCode::kPermissionDenied, "relative path inside");
  expect_error(parse(with_external((root_ / "secret.bin").string()), dir), ErrorCode::kPermissionDenied, "relative path inside");
  expect_error(parse(with_external("link.bin"), dir), ErrorCode::kPermissionDenied, "resolves outside");
  expect_error(parse(with_external("w.bin", "4"), dir), ErrorCode::kInvalidArgument, "past the end");
  expect_error(parse(with_external("w.bin", "-1"), dir), ErrorCode::kInvalidArgument, "is not a number");
  expect_error(parse(with_external("missing.bin"), dir), ErrorCode::kNotFound, "missing.bin");
  expect_error(parse(with_external("w.bin"), ""), ErrorCode::kPermissionDenied, "external data is refused");
}

TEST(OnnxLoader, SubgraphsSeeOuterValuesAndRecordThem) {
  auto m = base_model();
  auto* g = m.mutable_graph();
  add_node(g, "Neg", {"x"}, {"outer"}, "producer");
  add_node(g, "Identity", {"x"}, {"cond_src"}, "c");
  auto* n = add_node(g, "If", {"cond"}, {"y"}, "branch");
  add_node(g, "Cast", {"cond_src"}, {"cond"}, "cast");
  for (const char* b : {"then_branch", "else_branch"}) {
    auto* a = n->add_attribute();
    a->set_name(b);
    a->set_type(::onnx::AttributeProto::GRAPH);
    auto* sg = a->mutable_g();
    sg->set_name(b);
    add_node(sg, "Relu", {"outer"}, {"r"});
    *sg->add_output() = value_info("r", {});
  }
  auto r = parse(m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // The If comes after both of its producers: the condition's and the subgraphs' outer value.
  const auto& nodes = r->graph.nodes;
  ASSERT_EQ(nodes.size(), 4u);
  EXPECT_EQ(nodes.back().name, "branch");
  const Graph* then_g = nodes.back().attr_graph("then_branch");
  ASSERT_NE(then_g, nullptr);
  EXPECT_EQ(then_g->outer_refs, (std::vector<std::string>{"outer"}));

  // A subgraph reading a name defined nowhere is refused, naming the node and the attribute.
  auto bad = base_model();
  auto* bg = bad.mutable_graph();
  add_node(bg, "Identity", {"x"}, {"y"});
  auto* bn = add_node(bg, "If", {"x"}, {"z"}, "bad_if");
  auto* a = bn->add_attribute();
  a->set_name("then_branch");
  a->set_type(::onnx::AttributeProto::GRAPH);
  add_node(a->mutable_g(), "Relu", {"ghost"}, {"r"}, "inner");
  *a->mutable_g()->add_output() = value_info("r", {});
  auto br = parse(bad);
  expect_error(br, ErrorCode::kInvalidArgument, "node 'inner' (Relu): input 'ghost' is not defined");
  EXPECT_NE(br.status().message().find("node 'bad_if' (If) attribute 'then_branch'"), std::string::npos) << br.status().to_string();
}

TEST(OnnxLoader, OtherDomainsAreAcceptedUntilANodeUsesThem) {
  auto m = base_model();
  auto* os = m.add_opset_import();
  os->set_domain("com.microsoft");
  os->set_version(1);
  add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
  auto r = parse(m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->other_opsets.at("com.microsoft"), 1);

  auto used = base_model();
  add_node(used.mutable_graph(), "FusedGemm", {"x"}, {"y"}, "ms")->set_domain("com.microsoft");
  auto ru = parse(used);
  ASSERT_TRUE(ru.ok()) << ru.status().to_string();
  auto s = Session::create(std::move(ru).value());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("node 'ms' (FusedGemm): operators of domain 'com.microsoft' are not supported"),
            std::string::npos)
      << s.status().to_string();
}

TEST(OnnxSession, NamesTheUnsupportedNodeAndOpset) {
  auto m = base_model();
  add_node(m.mutable_graph(), "NoSuchOperator", {"x"}, {"y"}, "weird");
  auto r = parse(m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto s = Session::create(std::move(r).value());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(s.status().message().find("node 'weird' (NoSuchOperator): operator NoSuchOperator is not supported (opset 13)"),
            std::string::npos)
      << s.status().to_string();

  auto future = base_model(99);
  add_node(future.mutable_graph(), "Relu", {"x"}, {"y"});
  auto rf = parse(future);
  ASSERT_TRUE(rf.ok());
  auto sf = Session::create(std::move(rf).value());
  ASSERT_FALSE(sf.ok());
  EXPECT_NE(sf.status().message().find("opset 99 is newer than hearth supports"), std::string::npos) << sf.status().to_string();
}

TEST(OnnxSession, ProfilesEachNodeOnlyWhenAsked) {
  auto m = base_model();
  add_node(m.mutable_graph(), "Relu", {"x"}, {"h"}, "first");
  add_node(m.mutable_graph(), "Neg", {"h"}, {"y"}, "second");
  Tensor x = Tensor::make(DType::kFloat, {2, 3}).value();
  for (int run = 0; run < 2; ++run) {
    const bool profile = run == 1;
    auto r = parse(m);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    SessionOptions o;
    o.profile = profile;
    o.fuse = false;
    auto s = Session::create(std::move(r).value(), o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->run({{"x", x}}).ok());
    const auto p = s->profile();
    if (!profile) {
      EXPECT_TRUE(p.empty());
      continue;
    }
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0].node, "first");
    EXPECT_EQ(p[0].op_type, "Relu");
    EXPECT_EQ(p[1].node, "second");
    EXPECT_EQ(p[1].op_type, "Neg");
    for (const auto& e : p) {
      EXPECT_EQ(e.calls, 3);
      EXPECT_EQ(e.inputs, "[2,3]");
      EXPECT_GE(e.seconds, 0.0);
    }
  }
}

TEST(OnnxLoader, RequiresADefaultOpsetAndBoundsNesting) {
  auto m = base_model();
  m.clear_opset_import();
  add_node(m.mutable_graph(), "Relu", {"x"}, {"y"});
  expect_error(parse(m), ErrorCode::kInvalidArgument, "imports no default-domain");

  // If inside If inside ... deeper than the limit.
  auto deep = base_model();
  add_node(deep.mutable_graph(), "Identity", {"x"}, {"y"});
  ::onnx::GraphProto* g = deep.mutable_graph();
  for (int i = 0; i < 12; ++i) {
    auto* n = add_node(g, "If", {"x"}, {fmt::format("o{}", i)});
    auto* a = n->add_attribute();
    a->set_name("then_branch");
    a->set_type(::onnx::AttributeProto::GRAPH);
    g = a->mutable_g();
    *g->add_output() = value_info("x", {});
  }
  expect_error(parse(deep), ErrorCode::kOutOfRange, "nest deeper than");
}

}  // namespace
}  // namespace hearth::onnx
