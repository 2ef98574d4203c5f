#include "hearth/tokenizer/vocab.h"

#include <algorithm>
#include <limits>

#include "hearth/core/log.h"
#include "hearth/tokenizer/pretokenizer_patterns.h"

namespace hearth::tokenizer {
namespace {

uint32_t attrs_from_type(int32_t type) {
  switch (static_cast<GgufTokenType>(type)) {
    case GgufTokenType::kNormal: return attr::kNormal;
    case GgufTokenType::kUnknown: return attr::kUnknown;
    case GgufTokenType::kControl: return attr::kControl;
    case GgufTokenType::kUserDefined: return attr::kUserDefined;
    case GgufTokenType::kUnused: return attr::kUnused;
    case GgufTokenType::kByte: return attr::kByte;
    default: return attr::kUndefined;
  }
}

// Token texts that mark a special role when the file names no id for it (llama.cpp detects
// these by text too; the first token in id order wins).
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",         "<|endoftext|>",     "<|end_of_text|>",
    "<EOT>",      "_<EOT>",     "[EOT]",   "<｜end▁of▁sentence｜>", "<end_of_utterance>"};
constexpr std::string_view kEomTexts[] = {"<|eom_id|>"};
constexpr std::string_view kFimPreTexts[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",    "<｜fim▁begin｜>",
                                             "<PRE>",          "▁<PRE>",       "<|code_prefix|>", "<|prefix|>"};
constexpr std::string_view kFimSufTexts[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",    "<｜fim▁hole｜>",
                                             "<SUF>",          "▁<SUF>",       "<|code_suffix|>", "<|suffix|>"};
constexpr std::string_view kFimMidTexts[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",    "<｜fim▁end｜>",
                                             "<MID>",          "▁<MID>",       "<|code_middle|>", "<|middle|>"};
constexpr std::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr std::string_view kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimSepTexts[] = {"<|file_sep|>"};
// Texts that end generation wherever they appear in the vocabulary.
constexpr std::string_view kEogTexts[] = {"<|eot_id|>",
                                          "<|im_end|>",
                                          "<|end|>",
                                          "<|return|>",
                                          "<|call|>",
                                          "<|flush|>",
                                          "<|calls|>",
                                          "<end_of_turn>",
                                          "<|endoftext|>",
                                          "</s>",
                                          "<|eom_id|>",
                                          "<EOT>",
                                          "_<EOT>",
                                          "[EOT]",
                                          "[EOS]",
                                          "<|end_of_text|>",
                                          "<end_of_utterance>",
                                          "<eos>",
                                          "<turn|>",
                                          "<|tool_response>",
                                          "<｜end▁of▁sentence｜>"};

template <size_t N>
bool in_list(std::string_view s, const std::string_view (&list)[N]) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

std::string merge_key(std::string_view left, std::string_view right) {
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key.append(left);
  key.push_back('\xFF');  // never part of valid UTF-8, so the key is unambiguous
  key.append(right);
  return key;
}

}  // namespace

Result<Vocab> Vocab::build(VocabSpec spec) {
  Vocab v;
  const std::string& src = spec.source;
  const size_t n = spec.tokens.size();
  if (n == 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.tokens is empty", src);
  }
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return make_error(ErrorCode::kOutOfRange, "{}: {} tokens is too many", src, n);
  }
  if (!spec.scores.empty() && spec.scores.size() < n) {
    return make_error(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.scores has {} entries for {} tokens", src,
                      spec.scores.size(), n);
  }
  if (!spec.token_types.empty() && spec.token_types.size() < n) {
    return make_error(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.token_type has {} entries for {} tokens", src,
                      spec.token_types.size(), n);
  }

  // Per-model defaults (llama.cpp's llama_vocab::impl::load).
  auto id_or_none = [n](int64_t id) {
    return id >= 0 && static_cast<size_t>(id) < n ? static_cast<int32_t>(id) : kNoToken;
  };
  if (spec.model == "llama") {
    v.type_ = VocabType::kSpm;
    v.bos_ = id_or_none(1);
    v.eos_ = id_or_none(2);
    v.unk_ = id_or_none(0);
    v.add_space_prefix_ = true;
    v.add_bos_ = true;
    v.clean_spaces_ = false;
  } else if (spec.model == "bert") {
    v.type_ = VocabType::kWpm;
    v.bos_ = id_or_none(101);
    v.unk_ = id_or_none(100);
    v.sep_ = id_or_none(102);
    v.pad_ = id_or_none(0);
    v.mask_ = id_or_none(103);
    v.add_bos_ = true;
    v.add_sep_ = true;
    v.clean_spaces_ = true;
  } else if (spec.model == "gpt2") {
    v.type_ = VocabType::kBpe;
    v.bos_ = id_or_none(11);
    v.eos_ = id_or_none(11);
    if (spec.pre.empty()) {
      log::warn(
          "{}: tokenizer.ggml.pre is missing; using the 'default' pre-tokenizer, which may "
          "split text differently from the model's own tokenizer (reconvert the model)",
          src);
    }
    HEARTH_ASSIGN_OR_RETURN(PreTokenizerConfig pc, pretokenizer_config(spec.pre));
    v.pre_ = spec.pre;
    v.ignore_merges_ = pc.ignore_merges;
    v.add_bos_ = pc.add_bos;
    v.clean_spaces_ = pc.clean_spaces;
  } else {
    return make_error(ErrorCode::kUnimplemented,
                      "{}: tokenizer model '{}' is not supported (tokenizer.ggml.model; supported: llama, gpt2, bert)",
                      src, spec.model);
  }
  if (spec.add_space_prefix) v.add_space_prefix_ = *spec.add_space_prefix;
  if (spec.add_bos) v.add_bos_ = *spec.add_bos;
  if (spec.add_eos) v.add_eos_ = *spec.add_eos;
  if (spec.add_sep) v.add_sep_ = *spec.add_sep;

  v.tokens_.resize(n);
  v.text_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    TokenData& t = v.tokens_[i];
    t.text = std::move(spec.tokens[i]);
    if (t.text.empty()) t.text = "[EMPTY_" + std::to_string(i) + "]";
    t.score = spec.scores.empty() ? 0.0f : spec.scores[i];
    t.attrs = spec.token_types.empty() ? attr::kNormal : attrs_from_type(spec.token_types[i]);
    v.max_token_len_ = std::max(v.max_token_len_, t.text.size());
    auto [it, inserted] = v.text_to_id_.emplace(t.text, static_cast<int32_t>(i));
    if (!inserted) {
      return make_error(ErrorCode::kInvalidArgument, "{}: token {} '{}' duplicates token {}", src, i, t.text,
                        it->second);
    }
  }

  // A SentencePiece byte-fallback token stands for the byte its text names, "<0xHH>"; any other
  // text ("<0xZZ>", "<0x-1>") would decode to nothing or to a wrong byte, so the file is refused.
  if (v.type_ == VocabType::kSpm) {
    auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
    for (size_t i = 0; i < n; ++i) {
      const std::string& t = v.tokens_[i].text;
      if (!(v.tokens_[i].attrs & attr::kByte)) continue;
      if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || !is_hex(t[3]) || !is_hex(t[4]) || t[5] != '>') {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}: token {} '{}' is a byte token (tokenizer.ggml.token_type 6) but its text is not <0xHH>; "
                          "the tokenizer data is corrupt (reconvert the model)",
                          src, i, t.substr(0, 32));
      }
    }
  }

  // Ids named in the file override the defaults when they are in range.
  struct Slot {
    const char* key;
    const std::optional<uint32_t>& value;
    int32_t& id;
  };
  const Slot slots[] = {
      {"bos_token_id", spec.bos_id, v.bos_},
      {"eos_token_id", spec.eos_id, v.eos_},
      {"eot_token_id", spec.eot_id, v.eot_},
      {"eom_token_id", spec.eom_id, v.eom_},
      {"unknown_token_id", spec.unk_id, v.unk_},
      {"seperator_token_id", spec.sep_id, v.sep_},
      {"padding_token_id", spec.pad_id, v.pad_},
      {"mask_token_id", spec.mask_id, v.mask_},
      {"fim_pre_token_id", spec.fim_pre_id, v.fim_pre_},
      {"fim_suf_token_id", spec.fim_suf_id, v.fim_suf_},
      {"fim_mid_token_id", spec.fim_mid_id, v.fim_mid_},
      {"fim_pad_token_id", spec.fim_pad_id, v.fim_pad_},
      {"fim_rep_token_id", spec.fim_rep_id, v.fim_rep_},
      {"fim_sep_token_id", spec.fim_sep_id, v.fim_sep_},
  };
  for (const Slot& s : slots) {
    if (!s.value) continue;
    if (*s.value < n) {
      s.id = static_cast<int32_t>(*s.value);
    } else if (*s.value != 0xFFFFFFFFu) {  // -1 stored as uint32 means "none" by convention
      log::warn("{}: tokenizer.ggml.{} = {} is outside the vocabulary of {}; ignored", src, s.key, *s.value, n);
    }
  }

  // Special roles found by text, and the control attribute they imply.
  auto force_control = [&](int32_t id) { v.tokens_[static_cast<size_t>(id)].attrs |= attr::kControl; };
  for (size_t i = 0; i < n; ++i) {
    const std::string_view text = v.tokens_[i].text;
    const auto id = static_cast<int32_t>(i);
    auto detect = [&](int32_t& slot, auto const& list) {
      if (slot == kNoToken && in_list(text, list)) {
        slot = id;
        force_control(id);
      }
    };
    detect(v.eot_, kEotTexts);
    detect(v.eom_, kEomTexts);
    detect(v.fim_pre_, kFimPreTexts);
    detect(v.fim_suf_, kFimSufTexts);
    detect(v.fim_mid_, kFimMidTexts);
    detect(v.fim_pad_, kFimPadTexts);
    detect(v.fim_rep_, kFimRepTexts);
    detect(v.fim_sep_, kFimSepTexts);
  }
  for (auto& t : v.tokens_) {
    if ((t.attrs & attr::kControl) && t.text.find("unused") != std::string::npos) {
      t.attrs |= attr::kUnused;
    }
  }

  // End-of-generation set.
  std::vector<int32_t> eog;
  for (int32_t id : {v.fim_pad_, v.fim_rep_, v.fim_sep_, v.eos_, v.eot_, v.eom_}) {
    if (id != kNoToken) eog.push_back(id);
  }
  for (size_t i = 0; i < n; ++i) {
    if (in_list(v.tokens_[i].text, kEogTexts)) {
      eog.push_back(static_cast<int32_t>(i));
      force_control(static_cast<int32_t>(i));
    }
  }
  for (size_t i = 0; i < n; ++i) {  // gpt-oss channel markers are always rendered
    const std::string_view t = v.tokens_[i].text;
    if (t == "<|channel|>" || t == "<|message|>" || t == "<|start|>" || t == "<|constrain|>") {
      v.tokens_[i].attrs = attr::kUserDefined;
    }
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  // Harmony-style vocabularies end turns with <|return|>/<|call|>; their <|end|> is not EOG.
  auto find_text = [&](std::string_view t) { return v.text_to_token(t); };
  const int32_t end_id = find_text("<|end|>");
  const bool has_return = find_text("<|return|>") != kNoToken;
  const bool has_call = find_text("<|call|>") != kNoToken || find_text("<|calls|>") != kNoToken;
  const bool has_flush = find_text("<|flush|>") != kNoToken;
  if (end_id != kNoToken && has_call && (has_return || has_flush)) {
    eog.erase(std::remove(eog.begin(), eog.end(), end_id), eog.end());
    v.tokens_[static_cast<size_t>(end_id)].attrs = attr::kUserDefined;
  }
  v.eog_ = std::move(eog);

  for (size_t i = 0; i < n; ++i) {
    if (v.tokens_[i].attrs & (attr::kControl | attr::kUserDefined | attr::kUnknown)) {
      v.special_tokens_.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(v.special_tokens_.begin(), v.special_tokens_.end(), [&](int32_t a, int32_t b) {
    return v.tokens_[static_cast<size_t>(a)].text.size() > v.tokens_[static_cast<size_t>(b)].text.size();
  });

  if (v.type_ == VocabType::kBpe) {
    if (spec.merges.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: tokenizer.ggml.merges is missing or empty (required for gpt2)", src);
    }
    v.merge_ranks_.reserve(spec.merges.size());
    for (size_t i = 0; i < spec.merges.size(); ++i) {
      const std::string& m = spec.merges[i];
      const size_t pos = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      std::string key = pos == std::string::npos
                            ? merge_key("", "")
                            : merge_key(std::string_view(m).substr(0, pos), std::string_view(m).substr(pos + 1));
      v.merge_ranks_.emplace(std::move(key), static_cast<int32_t>(std::min<size_t>(i, INT32_MAX)));
    }
  }
  return v;
}

int32_t Vocab::text_to_token(std::string_view text) const {
  auto it = text_to_id_.find(text);
  return it == text_to_id_.end() ? kNoToken : it->second;
}

int32_t Vocab::byte_to_token(uint8_t byte) const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char buf[6] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
  int32_t id = text_to_token(std::string_view(buf, 6));
  if (id != kNoToken) return id;
  const char raw = static_cast<char>(byte);
  id = text_to_token(std::string_view(&raw, 1));
  return id != kNoToken ? id : unk_;
}

int32_t Vocab::merge_rank(std::string_view left, std::string_view right) const {
  auto it = merge_ranks_.find(merge_key(left, right));
  return it == merge_ranks_.end() ? -1 : it->second;
}

bool Vocab::is_eog(int32_t id) const { return id != kNoToken && std::binary_search(eog_.begin(), eog_.end(), id); }

}  // namespace hearth::tokenizer
