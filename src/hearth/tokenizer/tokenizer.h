// hearth's tokenizer: text <-> token ids for the three tokenizer families found in GGUF files
// (tokenizer.ggml.model "llama" = SentencePiece BPE with byte fallback, "gpt2" = byte-level
// BPE with a per-model regex pre-tokenizer, "bert" = WordPiece). Encoding matches llama.cpp's
// llama_tokenize; decoding matches llama_token_to_piece / llama_detokenize.
//
// A Tokenizer is immutable after construction and safe to use from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/tokenizer/vocab.h"

namespace hearth::gguf {
class GgufFile;
}

namespace hearth::tokenizer {

class PreTokenizer;

struct DecodeOptions {
  // Drop a leading BOS and a trailing EOS when the model adds them itself (add_bos/add_eos);
  // with a leading BOS dropped, the first piece keeps its leading space.
  bool remove_special = false;
  // Render control and unknown tokens as their text (otherwise they decode to nothing).
  bool render_special = false;
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from a parsed GGUF file (vocab-only files work too).
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::GgufFile& file);
  static Result<std::unique_ptr<Tokenizer>> create(VocabSpec spec);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids for `text` (any bytes; invalid UTF-8 never fails). `add_special` adds what the
  // model asks for (BOS when add_bos, EOS when add_eos; WordPiece: [CLS] ... [SEP]).
  // `parse_special` turns control tokens written in the text ("<s>", "<|im_end|>") into their
  // ids; without it they are plain text. User-defined tokens are always matched.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes of one token (may be part of a UTF-8 sequence). SentencePiece: U+2581 becomes
  // a space and <0xAB> a raw byte; byte-level BPE: the GPT-2 byte mapping is undone. Control
  // and unknown tokens give "" unless `render_special`. Out-of-range ids give "".
  std::string token_to_piece(int32_t id, bool render_special = false) const;

  // The text of a sequence of ids (see DecodeOptions). SentencePiece drops the one leading
  // space that encode() added; "gpt2" and "bert" vocabularies that ask for it also clean up
  // spaces before punctuation (" ," -> ","), as llama.cpp does.
  std::string decode(std::span<const int32_t> ids, DecodeOptions opts = {}) const;

  VocabType type() const { return vocab_.type(); }
  int32_t n_vocab() const { return vocab_.n_tokens(); }
  int32_t bos() const { return vocab_.bos(); }  // kNoToken (-1) when the model has none
  int32_t eos() const { return vocab_.eos(); }
  int32_t eot() const { return vocab_.eot(); }
  int32_t unk() const { return vocab_.unk(); }
  int32_t sep() const { return vocab_.sep(); }
  int32_t pad() const { return vocab_.pad(); }
  bool add_bos() const { return vocab_.add_bos(); }
  bool add_eos() const { return vocab_.add_eos(); }
  // End of generation: EOS, EOT, EOM and the other turn-ending tokens of the vocabulary.
  bool is_eog(int32_t id) const { return vocab_.is_eog(id); }
  bool is_control(int32_t id) const { return vocab_.has_attr(id, attr::kControl); }
  // The token's text as stored in the vocabulary ("" for out-of-range ids).
  std::string_view token_text(int32_t id) const;
  const Vocab& vocab() const { return vocab_; }

 private:
  Tokenizer(Vocab vocab, std::unique_ptr<PreTokenizer> pre);
  Vocab vocab_;
  std::unique_ptr<PreTokenizer> pre_;  // "gpt2" only
};

// Turns a stream of token ids into text that is always valid UTF-8: bytes of a multi-byte
// character that arrive split across tokens are held until the character is complete, and
// bytes that can never form one are emitted as U+FFFD, so nothing is held for more than the
// 3 bytes of one incomplete character.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool render_special = false)
      : tokenizer_(&tokenizer), render_special_(render_special) {}

  // Adds one token; returns the text that became complete (often the whole piece, or "").
  std::string push(int32_t id);
  // Adds raw bytes (e.g. from a piece produced elsewhere).
  std::string push_bytes(std::string_view bytes);
  // End of stream: returns any held bytes as U+FFFD and resets.
  std::string flush();
  // Bytes held back so far (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  std::string pending_;
};

}  // namespace hearth::tokenizer
