// A tokenizer vocabulary: token texts, scores and attributes, the special token ids, BPE merge
// ranks and the per-model encoding flags. Built from plain vectors (VocabSpec) so that the
// algorithms can be tested on small hand-made vocabularies; vocab_gguf.h fills a VocabSpec
// from GGUF metadata. The defaults and the detection of special tokens follow llama.cpp's
// llama_vocab::load, so that a GGUF file tokenizes the same way in both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::tokenizer {

inline constexpr int32_t kNoToken = -1;

enum class VocabType { kSpm, kBpe, kWpm };

// Values of tokenizer.ggml.token_type.
enum class GgufTokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Token attribute bits (a token may carry several).
namespace attr {
inline constexpr uint32_t kUndefined = 0;
inline constexpr uint32_t kUnknown = 1u << 0;
inline constexpr uint32_t kUnused = 1u << 1;
inline constexpr uint32_t kNormal = 1u << 2;
inline constexpr uint32_t kControl = 1u << 3;
inline constexpr uint32_t kUserDefined = 1u << 4;
inline constexpr uint32_t kByte = 1u << 5;
}  // namespace attr

// The raw inputs, as stored under tokenizer.ggml.* in GGUF. Optional fields left empty take
// the per-model defaults.
struct VocabSpec {
  std::string source = "vocab";  // named in error messages (the file name)
  std::string model;             // "llama" (SentencePiece), "gpt2" (BPE), "bert" (WordPiece)
  std::string pre;               // pre-tokenizer name for "gpt2"
  std::vector<std::string> tokens;
  std::vector<float> scores;         // empty: all 0
  std::vector<int32_t> token_types;  // empty: all normal (GgufTokenType values)
  std::vector<std::string> merges;   // "left right", rank = index ("gpt2" only)
  std::optional<uint32_t> bos_id, eos_id, eot_id, eom_id, unk_id, sep_id, pad_id, mask_id;
  std::optional<uint32_t> fim_pre_id, fim_suf_id, fim_mid_id, fim_pad_id, fim_rep_id, fim_sep_id;
  std::optional<bool> add_bos, add_eos, add_sep, add_space_prefix;
};

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attrs = attr::kNormal;
};

// Heterogeneous-lookup hash so that string_view keys need no copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class Vocab {
 public:
  // Validates `spec` and applies the defaults. Errors name spec.source and the bad field.
  static Result<Vocab> build(VocabSpec spec);

  VocabType type() const { return type_; }
  const std::string& pre() const { return pre_; }
  int32_t n_tokens() const { return static_cast<int32_t>(tokens_.size()); }
  bool valid(int32_t id) const { return id >= 0 && id < n_tokens(); }
  const TokenData& token(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  bool has_attr(int32_t id, uint32_t a) const { return valid(id) && (token(id).attrs & a) != 0; }

  // kNoToken when `text` is not a token.
  int32_t text_to_token(std::string_view text) const;
  // SentencePiece byte fallback: "<0xAB>", else the byte itself as a token, else unk.
  int32_t byte_to_token(uint8_t byte) const;
  // BPE merge rank of (left, right), or -1.
  int32_t merge_rank(std::string_view left, std::string_view right) const;
  size_t max_token_len() const { return max_token_len_; }

  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }
  int32_t unk() const { return unk_; }
  int32_t sep() const { return sep_; }
  int32_t pad() const { return pad_; }
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_; }

  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_sep() const { return add_sep_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool ignore_merges() const { return ignore_merges_; }
  bool clean_spaces() const { return clean_spaces_; }

  // Control, user-defined and unknown tokens, longest text first (the order in which
  // encode() looks for them in the input).
  const std::vector<int32_t>& special_tokens() const { return special_tokens_; }

 private:
  VocabType type_ = VocabType::kSpm;
  std::string pre_;
  std::vector<TokenData> tokens_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> text_to_id_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> merge_ranks_;
  size_t max_token_len_ = 0;
  int32_t bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, eom_ = kNoToken, unk_ = kNoToken;
  int32_t sep_ = kNoToken, pad_ = kNoToken, mask_ = kNoToken;
  int32_t fim_pre_ = kNoToken, fim_suf_ = kNoToken, fim_mid_ = kNoToken;
  int32_t fim_pad_ = kNoToken, fim_rep_ = kNoToken, fim_sep_ = kNoToken;
  bool add_bos_ = false, add_eos_ = false, add_sep_ = false, add_space_prefix_ = false;
  bool ignore_merges_ = false, clean_spaces_ = false;
  std::vector<int32_t> eog_;  // sorted
  std::vector<int32_t> special_tokens_;
};

}  // namespace hearth::tokenizer
