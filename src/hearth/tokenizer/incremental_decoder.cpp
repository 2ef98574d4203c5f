#include "hearth/tokenizer/tokenizer.h"
#include "hearth/tokenizer/utf8.h"

namespace hearth::tokenizer {

std::string IncrementalDecoder::push(int32_t id) { return push_bytes(tokenizer_->token_to_piece(id, render_special_)); }

std::string IncrementalDecoder::push_bytes(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const Utf8Sequence seq = next_utf8_sequence(std::string_view(pending_).substr(i));
    if (seq.kind == Utf8Sequence::kIncomplete) break;  // wait for the next token
    if (seq.kind == Utf8Sequence::kComplete) {
      out.append(pending_, i, seq.length);
    } else {
      append_utf8(out, kReplacementChar);
    }
    i += seq.length;
  }
  pending_.erase(0, i);
  return out;
}

std::string IncrementalDecoder::flush() {
  std::string out;
  if (!pending_.empty()) append_utf8(out, kReplacementChar);  // an unfinished character
  pending_.clear();
  return out;
}

}  // namespace hearth::tokenizer
