// `hearth tokenize MODEL TEXT [--no-bos] [--special] [--ids]`: the token ids of TEXT under the
// model's tokenizer, one "id 'piece'" per line (control characters and bytes that are not
// complete UTF-8 escaped as \n, \t, \xNN), or with --ids only the ids on one line. Works on
// vocab-only GGUF files (no tensors are read).
#include <fmt/format.h>

#include <cstdio>
#include <string>

#include "command.h"
#include "hearth/gguf/gguf.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/tokenizer/utf8.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  bool no_bos = false;
  bool special = false;
  bool ids_only = false;
};

std::string escaped(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      const auto seq = tokenizer::next_utf8_sequence(s.substr(i));
      if (seq.kind == tokenizer::Utf8Sequence::kComplete) {
        out.append(s.substr(i, seq.length));
        i += seq.length;
        continue;
      }
      out += fmt::format("\\x{:02x}", c);
    }
    ++i;
  }
  return out;
}

Status run(const TokenizeOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg model, resolve_model_arg(o.model, "tokenize"));
  HEARTH_ASSIGN_OR_RETURN(auto file, open_gguf(model));
  HEARTH_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::from_gguf(file->file));
  const std::vector<int32_t> ids = tok->encode(o.text, !o.no_bos, o.special);
  if (o.ids_only) {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i > 0) line += ' ';
      line += std::to_string(ids[i]);
    }
    std::printf("%s\n", line.c_str());
    return ok_status();
  }
  for (int32_t id : ids) {
    std::printf("%d '%s'\n", id, escaped(tok->token_to_piece(id, /*render_special=*/true)).c_str());
  }
  return ok_status();
}

void setup(CLI::App& app) {
  static TokenizeOptions o;
  auto* sub = app.add_subcommand("tokenize", "show the token ids of a text under a model's tokenizer");
  sub->add_option("model", o.model, "GGUF file (a vocab-only file is enough)")->required();
  sub->add_option("text", o.text, "the text to tokenize")->required();
  sub->add_flag("--no-bos", o.no_bos, "do not add the BOS/EOS tokens the model asks for");
  sub->add_flag("--special", o.special, "match special tokens written in the text (e.g. <s>)");
  sub->add_flag("--ids", o.ids_only, "print only the ids, space-separated on one line");
  sub->callback([] {
    Status s = run(o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(150, setup);

}  // namespace
}  // namespace hearth::cli
