// libFuzzer target: a tokenizer built from a hostile vocabulary (what a crafted GGUF file can
// put in tokenizer.ggml.*): empty and duplicate tokens, byte-typed tokens that are not
// "<0xAB>", out-of-range special ids, merges naming unknown tokens. Building may fail with an
// error; when it succeeds, encode and decode must not crash and ids must stay in range.
//
// Input: byte 0 picks the model and pre-tokenizer, bytes 1..3 the bos/eos/unk ids, the rest is
// lines: "M<left> <right>" is a merge, any other line is a token whose first byte is its type.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "hearth/tokenizer/tokenizer.h"
#include "hearth/tokenizer/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::tokenizer;
  if (size < 4) return 0;
  static const char* const kModels[] = {"llama", "gpt2", "bert"};
  static const char* const kPres[] = {"gpt-2", "llama3", "qwen2", "deepseek-llm", "falcon", ""};
  VocabSpec spec;
  spec.source = "fuzz";
  spec.model = kModels[data[0] % 3];
  spec.pre = kPres[(data[0] / 3) % 6];
  spec.bos_id = data[1];
  spec.eos_id = data[2];
  if (data[3] != 0xFF) spec.unk_id = data[3];
  const std::string_view body(reinterpret_cast<const char*>(data + 4), size - 4);
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    const std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line[0] == 'M') {
      spec.merges.emplace_back(line.substr(1));
    } else if (!line.empty()) {
      spec.tokens.emplace_back(line.substr(1));
      spec.token_types.push_back(static_cast<uint8_t>(line[0]) % 8);
      spec.scores.push_back(static_cast<float>(static_cast<int8_t>(line.size())));
    }
  }
  auto created = Tokenizer::create(std::move(spec));
  if (!created.ok()) {
    if (created.status().message().empty()) std::abort();
    return 0;
  }
  const Tokenizer& tok = **created;
  std::string all;
  for (int32_t id = 0; id < tok.n_vocab(); ++id) all.append(tok.token_text(id));
  for (const std::string& text : {all, std::string(body), std::string("Hello world <s> \xC3\xA9!")}) {
    for (int flags = 0; flags < 4; ++flags) {
      const auto ids = tok.encode(text, flags & 1, flags & 2);
      for (int32_t id : ids) {
        if (id < 0 || id >= tok.n_vocab()) std::abort();
      }
      (void)tok.decode(ids, {.remove_special = (flags & 1) != 0, .render_special = (flags & 2) != 0});
      IncrementalDecoder dec(tok, flags & 2);
      for (int32_t id : ids) {
        if (!is_valid_utf8(dec.push(id))) std::abort();
      }
      (void)dec.flush();
    }
  }
  return 0;
}
