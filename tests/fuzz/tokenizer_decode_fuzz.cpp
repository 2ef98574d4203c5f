// libFuzzer target: decoding arbitrary id sequences (out-of-range and negative ids included)
// with token_to_piece, decode and IncrementalDecoder. Must never crash; the incremental
// decoder's output must always be valid UTF-8, and equal the plain concatenation of pieces
// whenever that is valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "hearth/tokenizer/utf8.h"
#include "tokenizer_fuzz_vocabs.h"

namespace {

std::vector<hearth::fuzz::FuzzVocab>& vocabs() {
  static auto v = hearth::fuzz::load_fuzz_vocabs({"llama-spm", "gpt-2", "bert-bge"});
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vocabs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto& vs = vocabs();
  const uint8_t selector = data[0];
  const auto& tok = *vs[selector % vs.size()].tok;
  const bool render_special = (selector & 0x10) != 0;
  const bool remove_special = (selector & 0x20) != 0;
  // Ids are 2-byte values mostly inside the vocabulary (so that real pieces get decoded),
  // with the top bit turning a value into an arbitrary 32-bit id from the next 4 bytes.
  std::vector<int32_t> ids;
  size_t i = 1;
  while (i + 2 <= size) {
    uint16_t v;
    std::memcpy(&v, data + i, 2);
    i += 2;
    if ((v & 0x8000) && i + 4 <= size) {
      int32_t raw;
      std::memcpy(&raw, data + i, 4);
      i += 4;
      ids.push_back(raw);
    } else {
      ids.push_back(static_cast<int32_t>(v % static_cast<uint32_t>(tok.n_vocab())));
    }
  }

  (void)tok.decode(ids, {.remove_special = remove_special, .render_special = render_special});
  hearth::tokenizer::IncrementalDecoder dec(tok, render_special);
  std::string streamed;
  std::string concatenated;
  for (int32_t id : ids) {
    concatenated += tok.token_to_piece(id, render_special);
    const std::string piece = dec.push(id);
    if (!hearth::tokenizer::is_valid_utf8(piece)) std::abort();
    streamed += piece;
    if (dec.pending_bytes() > 3) std::abort();
  }
  streamed += dec.flush();
  if (!hearth::tokenizer::is_valid_utf8(streamed)) std::abort();
  if (hearth::tokenizer::is_valid_utf8(concatenated) && streamed != concatenated) std::abort();
  return 0;
}
