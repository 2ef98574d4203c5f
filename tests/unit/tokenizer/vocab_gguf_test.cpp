// Building a tokenizer from GGUF metadata (files made in memory with GgufWriter).
#include <gtest/gtest.h>

#include "hearth/gguf/gguf.h"
#include "hearth/gguf/gguf_writer.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/tokenizer/vocab_gguf.h"

namespace hearth::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

// A SentencePiece vocabulary: <unk> <s> </s> ▁ a ▁a (ids 0..5).
gguf::GgufWriter spm_writer() {
  gguf::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_array_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a",
                                                "\xE2\x96\x81"
                                                "a"});
  w.set_array_f32("tokenizer.ggml.scores", {0, 0, 0, -1, -1, -0.5f});
  w.set_array_i32("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1});
  return w;
}

struct Built {
  std::vector<std::byte> bytes;
  Result<std::unique_ptr<Tokenizer>> tok = Status(ErrorCode::kInternal, "unset");
};

Built build(const gguf::GgufWriter& w) {
  Built b;
  auto bytes = w.to_bytes();
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  b.bytes = std::move(bytes).value();
  auto file = gguf::parse_gguf(b.bytes, "test.gguf");
  EXPECT_TRUE(file.ok()) << file.status().to_string();
  if (file.ok()) b.tok = Tokenizer::from_gguf(*file);
  return b;
}

TEST(VocabGguf, SpmDefaultsWhenKeysAreMissing) {
  Built b = build(spm_writer());
  ASSERT_TRUE(b.tok.ok()) << b.tok.status().to_string();
  const Tokenizer& tok = **b.tok;
  // No add_bos_token key: SentencePiece adds BOS; bos/eos/unk default to 1/2/0.
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("a", true, false), (Ids{1, 5}));
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_EQ(tok.unk(), 0);
}

TEST(VocabGguf, KeysOverrideDefaults) {
  gguf::GgufWriter w = spm_writer();
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_u32("tokenizer.ggml.eos_token_id", 1);
  w.set_u32("tokenizer.ggml.bos_token_id", 4294967295u);  // "none": keeps the default
  w.set_u32("tokenizer.ggml.padding_token_id", 99);       // out of range: ignored
  Built b = build(w);
  ASSERT_TRUE(b.tok.ok()) << b.tok.status().to_string();
  const Tokenizer& tok = **b.tok;
  EXPECT_FALSE(tok.add_bos());
  EXPECT_EQ(tok.encode("a", true, false), (Ids{4}));  // no BOS, no space prefix
  EXPECT_EQ(tok.eos(), 1);
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.pad(), kNoToken);
}

TEST(VocabGguf, Errors) {
  {
    gguf::GgufWriter w = spm_writer();
    w.remove_key("tokenizer.ggml.model");
    Built b = build(w);
    ASSERT_FALSE(b.tok.ok());
    EXPECT_EQ(b.tok.status().code(), ErrorCode::kNotFound);
    EXPECT_NE(b.tok.status().message().find("test.gguf"), std::string::npos);
  }
  {
    gguf::GgufWriter w = spm_writer();
    w.set_array_i32("tokenizer.ggml.tokens", {1, 2, 3});
    EXPECT_EQ(build(w).tok.status().code(), ErrorCode::kInvalidArgument);
  }
  {
    gguf::GgufWriter w = spm_writer();
    w.set_array_i32("tokenizer.ggml.token_type", {2, 3});
    Built b = build(w);
    ASSERT_FALSE(b.tok.ok());
    EXPECT_NE(b.tok.status().message().find("token_type"), std::string::npos);
  }
  {
    gguf::GgufWriter w = spm_writer();
    w.set_string("tokenizer.ggml.add_bos_token", "yes");
    EXPECT_FALSE(build(w).tok.ok());
  }
  {
    gguf::GgufWriter w = spm_writer();
    w.set_string("tokenizer.ggml.model", "gpt2");  // byte-level BPE needs merges
    Built b = build(w);
    ASSERT_FALSE(b.tok.ok());
    EXPECT_NE(b.tok.status().message().find("merges"), std::string::npos);
  }
}

// A byte-fallback token (type 6) must read <0xHH>; "<0xZZ>" and "<0x-1>" used to load and
// decode to nothing.
TEST(VocabGguf, ByteTokenTextMustBeHexByte) {
  auto with_byte_token = [](const std::string& text) {
    gguf::GgufWriter w = spm_writer();
    w.set_array_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a",
                                                  "\xE2\x96\x81"
                                                  "a",
                                                  text});
    w.set_array_f32("tokenizer.ggml.scores", {0, 0, 0, -1, -1, -0.5f, 0});
    w.set_array_i32("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 6});
    return build(w);
  };
  for (const std::string bad : {"<0xZZ>", "<0x-1>", "<0x0A", "<0x0AB>", "x"}) {
    Built b = with_byte_token(bad);
    ASSERT_FALSE(b.tok.ok()) << bad;
    EXPECT_EQ(b.tok.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(b.tok.status().message().find("<0xHH>"), std::string::npos) << b.tok.status().message();
    EXPECT_NE(b.tok.status().message().find("token 6"), std::string::npos) << b.tok.status().message();
  }
  Built good = with_byte_token("<0x0A>");
  ASSERT_TRUE(good.tok.ok()) << good.tok.status().message();
  EXPECT_EQ((*good.tok)->decode(std::vector<int32_t>{6}), "\n");
}

TEST(VocabGguf, BpeWithMerges) {
  gguf::GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_array_strings("tokenizer.ggml.tokens", {"a", "b", "ab", "\xC4\xA0",
                                                "\xC4\xA0"
                                                "ab"});
  w.set_array_strings("tokenizer.ggml.merges", {"a b", "\xC4\xA0 ab"});
  Built b = build(w);
  ASSERT_TRUE(b.tok.ok()) << b.tok.status().to_string();
  // "ab ab" -> words "ab", " ab" -> a b (rank 0) = ab; Ġ a b -> Ġ ab (rank 0) -> Ġab (rank 1).
  EXPECT_EQ((*b.tok)->encode("ab ab", false, false), (Ids{2, 4}));
  EXPECT_FALSE((*b.tok)->add_bos());
}

}  // namespace
}  // namespace hearth::tokenizer
