// A catalogue of handcrafted corrupt GGUF files: each must fail cleanly with its own error code
// and a message naming the place and the bad value. Offsets and sizes in the expected messages
// are computed by hand from the layout: header = 4 magic + 4 version + 8 n_tensors + 8 n_kv = 24
// bytes; a string is 8 + len bytes; a tensor info is string + 4 + 8 * n_dims + 4 + 8 bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "hearth/gguf/gguf.h"
#include "raw_gguf.h"

namespace hearth::gguf {
namespace {

using ::testing::HasSubstr;
using testing::RawGguf;

constexpr uint64_t kU64Max = UINT64_MAX;
constexpr uint32_t kF32 = 0, kQ4_0 = 2, kQ8_0 = 8;
constexpr uint32_t kTypeU8 = 0, kTypeU32 = 4, kTypeBool = 7, kTypeString = 8, kTypeArray = 9, kTypeU64 = 10;

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type;
  uint64_t offset;
};

// A v3 file with the given tensor infos (no metadata), padded to 32, then `data_bytes` zeros.
std::vector<std::byte> tensor_file(const std::vector<TensorSpec>& ts, uint64_t data_bytes) {
  RawGguf g;
  g.header(3, ts.size(), 0);
  for (const auto& t : ts) g.tensor(t.name, t.ne, t.type, t.offset);
  return g.pad(32).zeros(data_bytes).bytes();
}

// A v3 file with one key whose type and value bytes the caller writes.
std::vector<std::byte> one_kv(std::string_view key, uint32_t type, const std::function<void(RawGguf&)>& value) {
  RawGguf g;
  g.header(3, 0, 1).key(key, type);
  value(g);
  return g.bytes();
}

struct CorruptCase {
  std::string name;
  std::function<std::vector<std::byte>()> build;
  ErrorCode code;
  std::string message;  // a distinctive substring of the expected error
};

const std::vector<CorruptCase>& catalogue() {
  using EC = ErrorCode;
  static const std::vector<CorruptCase> cases = {
      // --- header ---
      {"empty_file", [] { return std::vector<std::byte>{}; }, EC::kInvalidArgument, "header: file is empty (0 bytes)"},
      {"bad_magic", [] { return RawGguf().raw("GGML").u32(3).u64(0).u64(0).bytes(); }, EC::kInvalidArgument,
       "bad magic 0x4c4d4747 (expected 'GGUF')"},  // bytes 47 47 4d 4c read little-endian
      {"truncated_magic", [] { return RawGguf().raw("GG").bytes(); }, EC::kDataLoss,
       "magic needs 4 bytes at offset 0 but only 2 remain"},
      {"version_0", [] { return RawGguf().header(0, 0, 0).bytes(); }, EC::kInvalidArgument, "invalid version 0"},
      {"version_1", [] { return RawGguf().header(1, 0, 0).bytes(); }, EC::kUnimplemented, "version 1 is obsolete"},
      {"version_4", [] { return RawGguf().header(4, 0, 0).bytes(); }, EC::kUnimplemented,
       "version 4 is newer than hearth supports"},
      {"version_big_endian", [] { return RawGguf().header(0x03000000u, 0, 0).bytes(); }, EC::kUnimplemented,
       "big-endian gguf (version field 0x03000000)"},
      {"truncated_header", [] { return RawGguf().raw("GGUF").u32(3).u32(0).bytes(); }, EC::kDataLoss,
       "n_tensors needs 8 bytes at offset 8 but only 4 remain"},
      {"huge_n_tensors", [] { return RawGguf().header(3, kU64Max, 0).bytes(); }, EC::kInvalidArgument,
       "n_tensors 18446744073709551615 exceeds the limit of 1048576"},
      {"huge_n_kv", [] { return RawGguf().header(3, 0, (1u << 20) + 1).bytes(); }, EC::kInvalidArgument,
       "n_kv 1048577 exceeds the limit of 1048576"},
      // 1000 kv need at least 1000 * 14 bytes (8 key length + 1 key byte + 4 type + 1 value byte).
      {"n_kv_beyond_file", [] { return RawGguf().header(3, 0, 1000).zeros(100).bytes(); }, EC::kDataLoss,
       "n_kv 1000 and n_tensors 0 need at least 14000 bytes but only 100 remain"},
      // 10 tensors need at least 10 * 33 bytes (8 + 1 name, 4 n_dims, 8 one dim, 4 type, 8 offset).
      {"n_tensors_beyond_file", [] { return RawGguf().header(3, 10, 0).zeros(100).bytes(); }, EC::kDataLoss,
       "n_kv 0 and n_tensors 10 need at least 330 bytes but only 100 remain"},
      // --- metadata ---
      {"huge_key_length", [] { return RawGguf().header(3, 0, 1).u64(kU64Max).zeros(20).bytes(); }, EC::kInvalidArgument,
       "kv #0: key length 18446744073709551615 exceeds the limit of 65535 bytes"},
      {"empty_key", [] { return RawGguf().header(3, 0, 1).str("").u32(kTypeU32).u32(1).bytes(); }, EC::kInvalidArgument,
       "kv #0: empty key"},
      {"huge_string_length",
       [] { return one_kv("general.name", kTypeString, [](RawGguf& g) { g.u64((64ull << 20) + 1).zeros(8); }); },
       EC::kInvalidArgument, "kv 'general.name': string length 67108865 exceeds the limit of 67108864 bytes"},
      // value length at 24 + (8 + 12) + 4 = 48; payload starts at 56 with 3 bytes left.
      {"string_past_eof", [] { return one_kv("general.name", kTypeString, [](RawGguf& g) { g.u64(100).raw("abc"); }); },
       EC::kDataLoss, "string of length 100 needs 100 bytes at offset 56 but only 3 remain"},
      {"unknown_value_type", [] { return one_kv("a.x", 13, [](RawGguf& g) { g.zeros(8); }); }, EC::kInvalidArgument,
       "kv 'a.x': unknown value type 13"},
      {"bad_bool", [] { return one_kv("a.flag", kTypeBool, [](RawGguf& g) { g.u8(2); }); }, EC::kInvalidArgument,
       "kv 'a.flag': bool value 2 is not 0 or 1"},
      {"unknown_array_elem_type",
       [] { return one_kv("a.arr", kTypeArray, [](RawGguf& g) { g.u32(99).u64(1).zeros(8); }); }, EC::kInvalidArgument,
       "kv 'a.arr': unknown array element type 99"},
      {"huge_array_length",
       [] { return one_kv("a.arr", kTypeArray, [](RawGguf& g) { g.u32(kTypeU8).u64(kU64Max).zeros(8); }); },
       EC::kInvalidArgument, "array length 18446744073709551615 exceeds the limit of 67108864"},
      // elements start at 24 + (8 + 5) + 4 + 4 + 8 = 53.
      {"array_past_eof",
       [] { return one_kv("a.arr", kTypeArray, [](RawGguf& g) { g.u32(kTypeU32).u64(1000).zeros(8); }); },
       EC::kDataLoss, "array of 1000 uint32 needs 4000 bytes at offset 53 but only 8 remain"},
      {"string_array_count_past_eof",
       [] { return one_kv("a.strs", kTypeArray, [](RawGguf& g) { g.u32(kTypeString).u64(1000000).str("x"); }); },
       EC::kDataLoss, "array of 1000000 string needs 8000000 bytes"},
      {"string_array_element_past_eof",
       [] {
         return one_kv("a.strs", kTypeArray,
                       [](RawGguf& g) { g.u32(kTypeString).u64(2).str("ok").u64(50).raw("short"); });
       },
       EC::kDataLoss, "string array element 1 of length 50 needs 50 bytes"},
      {"bool_array_bad_element",
       [] { return one_kv("a.flags", kTypeArray, [](RawGguf& g) { g.u32(kTypeBool).u64(3).u8(1).u8(7).u8(0); }); },
       EC::kInvalidArgument, "bool array element 1 is 7, not 0 or 1"},
      // Array nesting depth 1 (top level) .. 4 is allowed; a fifth level is rejected.
      {"nested_array_too_deep",
       [] {
         return one_kv("a.nest", kTypeArray, [](RawGguf& g) {
           for (int i = 0; i < 4; ++i) g.u32(kTypeArray).u64(1);
           g.zeros(16);
         });
       },
       EC::kInvalidArgument, "arrays are nested deeper than the limit of 4"},
      // value at 24 + (8 + 17) + 4 = 53, two of its four bytes present.
      {"truncated_mid_kv",
       [] { return one_kv("general.alignment", kTypeU32, [](RawGguf& g) { g.raw(std::string("\x20\x00", 2)); }); },
       EC::kDataLoss,
       "kv 'general.alignment': file is truncated: uint32 value needs 4 bytes at offset 53 but only 2 "
       "remain"},
      {"alignment_zero", [] { return RawGguf().header(3, 0, 1).kv_u32("general.alignment", 0).bytes(); },
       EC::kInvalidArgument, "general.alignment is 0"},
      {"alignment_not_power_of_two", [] { return RawGguf().header(3, 0, 1).kv_u32("general.alignment", 48).bytes(); },
       EC::kInvalidArgument, "general.alignment 48 is not a power of two"},
      {"alignment_wrong_type",
       [] { return RawGguf().header(3, 0, 1).key("general.alignment", kTypeU64).u64(32).bytes(); },
       EC::kInvalidArgument, "general.alignment has type uint64, expected uint32"},
      {"duplicate_key",
       [] { return RawGguf().header(3, 0, 2).kv_str("general.name", "a").kv_str("general.name", "b").bytes(); },
       EC::kInvalidArgument, "kv 'general.name': duplicate key (first defined at kv #0)"},
      // --- tensor infos ---
      {"empty_tensor_name",
       [] {
         return tensor_file({{"", {8}, kF32, 0}}, 32);
       },
       EC::kInvalidArgument, "tensor #0: empty tensor name"},
      {"tensor_name_too_long",
       [] {
         return tensor_file({{std::string(64, 'x'), {8}, kF32, 0}}, 32);
       },
       EC::kInvalidArgument, "tensor #0: tensor name length 64 exceeds the limit of 63 bytes"},
      {"duplicate_tensor_name",
       [] {
         return tensor_file({{"a", {8}, kF32, 0}, {"a", {8}, kF32, 32}}, 64);
       },
       EC::kInvalidArgument, "tensor 'a': duplicate tensor name (first defined at tensor #0)"},
      {"n_dims_5",
       [] {
         return tensor_file({{"a", {8, 1, 1, 1, 1}, kF32, 0}}, 32);
       },
       EC::kInvalidArgument, "tensor 'a': n_dims 5 exceeds the maximum of 4"},
      {"n_dims_0",
       [] {
         return tensor_file({{"a", {}, kF32, 0}}, 32);
       },
       EC::kInvalidArgument, "tensor 'a': n_dims is 0"},
      {"zero_dim",
       [] {
         return tensor_file({{"a", {8, 0}, kF32, 0}}, 32);
       },
       EC::kInvalidArgument, "tensor 'a': dimension 1 is 0"},
      {"negative_dim",
       [] {
         return tensor_file({{"a", {1ull << 63}, kF32, 0}}, 32);
       },
       EC::kInvalidArgument, "dimension 0 is 9223372036854775808 (negative as int64)"},
      // 2^32 * 2^32 = 2^64 elements.
      {"element_count_overflow",
       [] {
         return tensor_file({{"a", {1ull << 32, 1ull << 32}, kF32, 0}}, 32);
       },
       EC::kInvalidArgument, "element count of shape [4294967296, 4294967296] overflows int64"},
      // 2^31 * 2^31 = 2^62 elements fit int64, but 4 bytes each is 2^64 bytes.
      {"byte_size_overflow",
       [] {
         return tensor_file({{"a", {1ull << 31, 1ull << 31}, kF32, 0}}, 32);
       },
       EC::kInvalidArgument, "byte size of shape [2147483648, 2147483648] (f32) overflows"},
      {"tensor_type_4",
       [] {
         return tensor_file({{"a", {32}, 4, 0}}, 32);
       },
       EC::kInvalidArgument, "tensor 'a': unknown tensor type id 4"},
      {"tensor_type_999",
       [] {
         return tensor_file({{"a", {32}, 999, 0}}, 32);
       },
       EC::kInvalidArgument, "tensor 'a': unknown tensor type id 999"},
      {"row_not_multiple_of_block",
       [] {
         return tensor_file({{"w", {4095, 1}, kQ4_0, 0}}, 4096);
       },
       EC::kInvalidArgument, "tensor 'w': row of 4095 is not a multiple of block size 32 (q4_0)"},
      {"offset_not_aligned",
       [] {
         return tensor_file({{"a", {8}, kF32, 5}}, 64);
       },
       EC::kInvalidArgument, "tensor 'a': data offset 5 is not a multiple of the alignment 32"},
      {"offset_not_aligned_custom",
       [] {
         return RawGguf()
             .header(3, 1, 1)
             .kv_u32("general.alignment", 64)
             .tensor("a", {8}, kF32, 32)
             .pad(64)
             .zeros(128)
             .bytes();
       },
       EC::kInvalidArgument, "data offset 32 is not a multiple of the alignment 64"},
      // tensor info "a" [8, 2]: its offset field starts at 24 + (8 + 1) + 4 + 16 + 4 = 57; 3 bytes of it remain.
      {"truncated_tensor_info",
       [] {
         return RawGguf().header(3, 1, 0).tensor("a", {8, 2}, kF32, 0).truncate(57 + 3).bytes();
       },
       EC::kDataLoss, "tensor 'a': file is truncated: tensor data offset needs 8 bytes at offset 57 but only 3 remain"},
      // 4 dims: the fourth starts at 24 + (8 + 1) + 4 + 3 * 8 = 61; 39 bytes follow the header (>= 33).
      {"truncated_tensor_dims",
       [] { return RawGguf().header(3, 1, 0).str("a").u32(4).u64(8).u64(1).u64(1).raw("\x01\x02").bytes(); },
       EC::kDataLoss, "tensor 'a': file is truncated: dimension needs 8 bytes at offset 61 but only 2 remain"},
      // --- data section ---
      // infos end at 24 + (8 + 1) + 4 + 16 + 4 + 8 = 65, so data starts at 96; the file is cut at 80.
      {"truncated_data_section",
       [] {
         return RawGguf().header(3, 1, 0).tensor("a", {8, 2}, kF32, 0).pad(32).zeros(64).truncate(80).bytes();
       },
       EC::kDataLoss, "the data section starts at 96, past the end of the file (80 bytes)"},
      {"offset_past_eof",
       [] {
         return tensor_file({{"a", {8, 2}, kF32, 4096}}, 64);
       },
       EC::kDataLoss, "data offset 4096 is past the end of the data section (64 bytes)"},
      {"offset_plus_size_past_eof",
       [] {
         return tensor_file({{"a", {8, 2}, kF32, 32}}, 64);
       },
       EC::kDataLoss, "data [32, +64) ends past the end of the data section (64 bytes)"},
      {"q8_0_data_short",
       [] {
         return tensor_file({{"q", {64}, kQ8_0, 0}}, 64);
       },
       EC::kDataLoss, "tensor 'q': file is truncated: data [0, +68)"},  // 2 blocks of 34 bytes
      {"overlapping_tensors",
       [] {
         return tensor_file({{"a", {8, 2}, kF32, 0}, {"b", {8}, kF32, 32}}, 96);
       },
       EC::kInvalidArgument, "tensor 'b': data [32, 64) overlaps tensor 'a' [0, 64)"},
      {"overlapping_tensors_unordered",
       [] {
         return tensor_file({{"late", {16}, kF32, 64}, {"early", {24}, kF32, 32}}, 128);
       },
       EC::kInvalidArgument, "tensor 'late': data [64, 128) overlaps tensor 'early' [32, 128)"},
  };
  return cases;
}

class CorruptFileTest : public ::testing::TestWithParam<CorruptCase> {};

TEST_P(CorruptFileTest, FailsWithItsOwnError) {
  const CorruptCase& c = GetParam();
  std::vector<std::byte> bytes = c.build();
  Result<GgufFile> r = parse_gguf(bytes, "test.gguf");
  ASSERT_FALSE(r.ok()) << c.name << " parsed successfully";
  EXPECT_EQ(r.status().code(), c.code) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr(c.message));
  EXPECT_EQ(r.status().message().rfind("test.gguf: ", 0), 0u) << "the error must name the file";
}

INSTANTIATE_TEST_SUITE_P(Catalogue, CorruptFileTest, ::testing::ValuesIn(catalogue()),
                         [](const ::testing::TestParamInfo<CorruptCase>& param_info) { return param_info.param.name; });

TEST(CorruptCatalogue, HasAtLeastThirtyDistinctCases) {
  std::set<std::string> names, messages;
  for (const auto& c : catalogue()) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case name " << c.name;
    EXPECT_TRUE(messages.insert(c.message).second) << "case " << c.name << " repeats another case's error";
  }
  EXPECT_GE(catalogue().size(), 30u);
}

// The builders above are exercised against a valid baseline too, so a case cannot fail merely
// because the builder is wrong elsewhere in the file.
TEST(CorruptCatalogue, BaselineFilesParse) {
  auto good = tensor_file({{"a", {8, 2}, kF32, 0}, {"b", {32}, kQ8_0, 64}}, 128);
  auto r = parse_gguf(good, "test.gguf");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // infos end at 24 + 41 ("a", 2 dims) + 33 ("b", 1 dim) = 98, aligned up to 128.
  EXPECT_EQ(r->data_offset(), 128u);
  auto kv = one_kv("a.flags", kTypeArray, [](RawGguf& g) { g.u32(kTypeBool).u64(3).u8(1).u8(0).u8(1); });
  EXPECT_TRUE(parse_gguf(kv, "test.gguf").ok());
}

TEST(CorruptCatalogue, RowErrorMessageIsExact) {
  auto bytes = RawGguf().header(3, 1, 0).tensor("blk.3.attn_q.weight", {4095, 4096}, kQ4_0, 0).pad(32).bytes();
  auto r = parse_gguf(bytes, "model.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "model.gguf: tensor 'blk.3.attn_q.weight': row of 4095 is not a multiple of block size 32 (q4_0)");
}

TEST(CorruptCatalogue, EveryPrefixOfAValidFileFailsCleanly) {
  RawGguf g;
  g.header(3, 2, 3)
      .kv_str("general.architecture", "llama")
      .key("a.strs", kTypeArray)
      .u32(kTypeString)
      .u64(2)
      .str("x")
      .str("yz")
      .kv_u32("general.alignment", 64)
      .tensor("a", {8, 2}, kF32, 0)
      .tensor("b", {32}, kQ8_0, 64)
      .pad(64)
      .zeros(128);
  auto full = g.bytes();
  ASSERT_TRUE(parse_gguf(full, "test.gguf").ok());
  // Tensor "b" ends at 64 + 34 = 98 in the data section; shorter files lose bytes it needs.
  auto parsed = parse_gguf(full, "test.gguf");
  const uint64_t needed = parsed->data_offset() + 98;
  for (size_t n = 0; n < needed; ++n) {
    std::span<const std::byte> prefix(full.data(), n);
    auto r = parse_gguf(prefix, "test.gguf");
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_TRUE(r.status().code() == ErrorCode::kDataLoss || n == 0) << n << ": " << r.status().to_string();
  }
}

}  // namespace
}  // namespace hearth::gguf
