// Typed metadata access (missing vs wrong type vs does-not-fit) and GgufWriter's own errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "hearth/core/atomic_file.h"
#include "hearth/gguf/gguf.h"
#include "hearth/gguf/gguf_writer.h"
#include "shared_data.h"

namespace hearth::gguf {
namespace {

using ::testing::HasSubstr;

GgufFile parse_or_die(const GgufWriter& w) {
  auto bytes = w.to_bytes();
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  static std::vector<std::vector<std::byte>> keep;  // the parsed views point into these bytes
  keep.push_back(std::move(*bytes));
  auto f = parse_gguf(keep.back(), "access.gguf");
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  return std::move(f).value();
}

class TypedAccess : public ::testing::Test {
 protected:
  void SetUp() override {
    GgufWriter w;
    w.set_u8("u8", 200);
    w.set_i8("i8", -3);
    w.set_i32("neg", -1);
    w.set_u32("u32", 4000000000u);
    w.set_u64("big", 1ull << 40);
    w.set_u64("huge", UINT64_MAX);
    w.set_f32("f32", 0.5f);
    w.set_f64("f64", 1e-6);
    w.set_bool("flag", true);
    w.set_string("name", "stories");
    w.set_array_strings("tokens", {"<unk>", "<s>"});
    w.set_array_i32("ints", {1, -2, 3});
    file_ = parse_or_die(w);
  }
  GgufFile file_;
};

TEST_F(TypedAccess, ValuesOfTheRightType) {
  EXPECT_EQ(*file_.get_uint("u8"), 200u);
  EXPECT_EQ(*file_.get_int("i8"), -3);
  EXPECT_EQ(*file_.get_u32("u32"), 4000000000u);
  EXPECT_EQ(*file_.get_uint("big"), 1ull << 40);
  EXPECT_EQ(*file_.get_int("big"), int64_t{1} << 40);
  EXPECT_EQ(*file_.get_uint("huge"), UINT64_MAX);
  EXPECT_EQ(*file_.get_f32("f32"), 0.5f);
  EXPECT_FLOAT_EQ(*file_.get_f32("f64"), 1e-6f);  // FLOAT64 is accepted and narrowed
  EXPECT_TRUE(*file_.get_bool("flag"));
  EXPECT_EQ(*file_.get_string("name"), "stories");
  auto tokens = file_.get_array("tokens", ValueType::STRING);
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ((*tokens)->strings[1], "<s>");
  auto ints = file_.get_array("ints", ValueType::INT32);
  ASSERT_TRUE(ints.ok());
  EXPECT_EQ(array_element<int32_t>(**ints, 1), -2);
}

TEST_F(TypedAccess, MissingIsNotFound) {
  for (auto r : {file_.get_uint("nope").status(), file_.get_int("nope").status(), file_.get_u32("nope").status(),
                 file_.get_f32("nope").status(), file_.get_bool("nope").status(), file_.get_string("nope").status(),
                 file_.get_array("nope", ValueType::STRING).status()}) {
    EXPECT_EQ(r.code(), ErrorCode::kNotFound);
    EXPECT_EQ(r.message(), "access.gguf: key 'nope' is missing");
  }
  EXPECT_EQ(file_.find("nope"), nullptr);
  EXPECT_EQ(file_.find_tensor("nope"), nullptr);
}

TEST_F(TypedAccess, WrongTypeIsInvalidArgument) {
  auto s = file_.get_string("u32");
  EXPECT_EQ(s.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "access.gguf: key 'u32' has the wrong type uint32, expected string");
  EXPECT_EQ(file_.get_uint("name").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(file_.get_uint("f32").status().message(), HasSubstr("wrong type float32, expected an integer"));
  EXPECT_EQ(file_.get_uint("flag").status().code(), ErrorCode::kInvalidArgument);  // bool is not an integer
  EXPECT_EQ(file_.get_f32("u32").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(file_.get_bool("u8").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(file_.get_array("name", ValueType::STRING).status().code(), ErrorCode::kInvalidArgument);
  auto a = file_.get_array("tokens", ValueType::INT32);
  EXPECT_EQ(a.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr("wrong type array of string, expected array of int32"));
}

TEST_F(TypedAccess, IntegersMustFit) {
  auto neg = file_.get_uint("neg");
  EXPECT_EQ(neg.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(neg.status().message(), "access.gguf: key 'neg' value -1 does not fit uint64");
  EXPECT_THAT(file_.get_u32("big").status().message(), HasSubstr("value 1099511627776 does not fit uint32"));
  EXPECT_THAT(file_.get_int("huge").status().message(), HasSubstr("value 18446744073709551615 does not fit int64"));
  EXPECT_EQ(*file_.get_int("neg"), -1);
}

TEST(GgufWriterErrors, TensorValidation) {
  GgufWriter w;
  std::vector<std::byte> four(4), bytes34(34);
  Status s = w.add_tensor("a", TensorType::F32, {2}, four);  // 2 f32 need 8 bytes
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'a': data has 4 bytes but its type and shape need 8"));
  ASSERT_TRUE(w.add_tensor("a", TensorType::F32, {1}, four).ok());
  EXPECT_THAT(w.add_tensor("a", TensorType::F32, {1}, four).message(), HasSubstr("duplicate tensor name"));
  EXPECT_THAT(w.add_tensor("q", TensorType::Q8_0, {33}, bytes34).message(),
              HasSubstr("row of 33 is not a multiple of block size 32 (q8_0)"));
  EXPECT_THAT(w.add_tensor("z", TensorType::F32, {}, four).message(), HasSubstr("n_dims 0 is not in 1..4"));
  EXPECT_THAT(w.add_tensor("z", TensorType::F32, {1, 1, 1, 1, 1}, four).message(), HasSubstr("n_dims 5"));
  EXPECT_THAT(w.add_tensor("z", TensorType::F32, {1, 0}, four).message(), HasSubstr("dimension 1 is 0"));
  EXPECT_THAT(w.add_tensor(std::string(64, 'n'), TensorType::F32, {1}, four).message(),
              HasSubstr("name of 64 bytes exceeds the limit of 63"));
  EXPECT_TRUE(w.add_tensor("q", TensorType::Q8_0, {32}, bytes34).ok());
  EXPECT_EQ(w.tensor_count(), 2u);
  EXPECT_EQ(w.tensor_bytes(1), 34u);
}

TEST(GgufWriterErrors, BadAlignmentAndKeysAreReportedAtWrite) {
  {
    GgufWriter w;
    w.set_alignment(3);
    EXPECT_THAT(w.to_bytes().status().message(), HasSubstr("alignment 3 is not a nonzero power of two"));
  }
  {
    GgufWriter w;
    w.set_alignment(0);
    EXPECT_EQ(w.to_bytes().status().code(), ErrorCode::kInvalidArgument);
  }
  {
    GgufWriter w;
    w.set_string("", "x");
    EXPECT_THAT(w.to_bytes().status().message(), HasSubstr("empty metadata key"));
  }
  {
    GgufWriter w;
    w.set_array_raw("a", ValueType::UINT32, std::vector<std::byte>(3));
    EXPECT_THAT(w.to_bytes().status().message(), HasSubstr("3 raw bytes are not an array of uint32"));
  }
  {
    GgufWriter w;
    w.set_u64("general.alignment", 64);
    EXPECT_THAT(w.to_bytes().status().message(), HasSubstr("general.alignment must be uint32, not uint64"));
  }
}

TEST(GgufWriterErrors, AlignmentKeyFollowsSetAlignment) {
  GgufWriter w;
  w.set_alignment(64);
  EXPECT_TRUE(w.has_key("general.alignment"));
  w.set_alignment(32);
  EXPECT_FALSE(w.has_key("general.alignment"));
  w.set_u32("general.alignment", 128);  // setting the key directly changes the layout too
  EXPECT_EQ(w.alignment(), 128u);
  std::vector<std::byte> data(4 * 3);
  ASSERT_TRUE(w.add_tensor("t", TensorType::F32, {3}, data).ok());
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.ok());
  auto f = parse_gguf(*bytes, "a.gguf");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->alignment(), 128u);
  EXPECT_EQ(f->data_offset() % 128, 0u);
  EXPECT_EQ(bytes->size(), f->data_offset() + 128);  // 12 bytes of data padded to 128
  w.remove_key("general.alignment");
  EXPECT_EQ(w.alignment(), kDefaultAlignment);
}

TEST(GgufWriterErrors, ReplacingAKeyKeepsItsPlace) {
  GgufWriter w;
  w.set_u32("a", 1);
  w.set_string("b", "x");
  w.set_string("a", "now a string");
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.ok());
  auto f = parse_gguf(*bytes, "a.gguf");
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].key, "a");
  EXPECT_EQ(*f->get_string("a"), "now a string");
}

TEST(GgufWriterErrors, StreamingTensorsNeedASource) {
  GgufWriter w;
  ASSERT_TRUE(w.add_tensor_info("t", TensorType::F32, {4}).ok());
  EXPECT_EQ(w.to_bytes().status().code(), ErrorCode::kFailedPrecondition);
  auto dir = hearth::testing::make_temp_dir("gguf-writer");
  EXPECT_EQ(w.write((dir / "x.gguf").string()).code(), ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(dir / "x.gguf"));
  std::filesystem::remove_all(dir);
}

TEST(GgufWriterErrors, FailedStreamingLeavesTheOldFile) {
  auto dir = hearth::testing::make_temp_dir("gguf-writer");
  const std::string path = (dir / "out.gguf").string();
  ASSERT_TRUE(write_file_atomic(path, std::string_view("old contents")).ok());

  GgufWriter w;
  std::vector<std::byte> first(16, std::byte{7});
  ASSERT_TRUE(w.add_tensor_info("a", TensorType::F32, {4}).ok());
  ASSERT_TRUE(w.add_tensor_info("b", TensorType::F32, {4}).ok());
  Status s = w.write_streaming(path, [&](size_t i) -> Result<std::span<const std::byte>> {
    if (i == 0) return std::span<const std::byte>(first);
    return make_error(ErrorCode::kCancelled, "quantize was cancelled");
  });
  EXPECT_EQ(s.code(), ErrorCode::kCancelled);
  EXPECT_EQ(*read_file(path), "old contents");

  s = w.write_streaming(
      path, [&](size_t) -> Result<std::span<const std::byte>> { return std::span<const std::byte>(first).first(8); });
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'a': the source gave 8 bytes, expected 16"));
  EXPECT_EQ(*read_file(path), "old contents");

  // No temp files are left behind.
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) entries += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(entries, 1u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth::gguf
