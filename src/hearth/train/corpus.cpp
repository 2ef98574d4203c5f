#include "hearth/train/corpus.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <system_error>

#include "hearth/core/atomic_file.h"
#include "hearth/tokenizer/utf8.h"

namespace hearth::train {
namespace fs = std::filesystem;

namespace {

// Offset of the first byte that breaks UTF-8.
size_t first_invalid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto seq = tokenizer::next_utf8_sequence(s.substr(i));
    if (seq.kind != tokenizer::Utf8Sequence::kComplete) return i;
    i += seq.length;
  }
  return s.size();
}

}  // namespace

void split_document(const std::string& text, double eval_frac, int64_t& counter, std::string& train,
                    std::string& eval) {
  const int64_t k = eval_frac > 0.0 ? std::max<int64_t>(2, std::llround(1.0 / eval_frac)) : 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    end = end == std::string::npos ? text.size() : end + 2;
    std::string_view para(text.data() + pos, end - pos);
    pos = end;
    if (para.find_first_not_of(" \t\r\n") == std::string_view::npos) continue;
    std::string& dst = (k > 0 && counter % k == k / 2) ? eval : train;
    ++counter;
    dst += para;
  }
}

Result<Corpus> read_corpus(const std::vector<std::string>& paths, double eval_frac, uint64_t max_bytes) {
  if (paths.empty()) return make_error(ErrorCode::kInvalidArgument, "no corpus given (--corpus PATH...)");
  if (!(eval_frac >= 0.0 && eval_frac < 0.5)) {
    return make_error(ErrorCode::kInvalidArgument, "--eval-frac must be in [0, 0.5)");
  }
  std::vector<std::string> files;
  std::set<fs::path> seen;
  for (const std::string& p : paths) {
    std::error_code ec;
    const auto st = fs::status(p, ec);
    if (ec || !fs::exists(st)) return make_error(ErrorCode::kNotFound, "{}: no such file or directory", p);
    std::vector<fs::path> found;
    if (fs::is_directory(st)) {
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        if (it->is_regular_file(ec)) found.push_back(it->path());
      }
      if (ec) return make_error(ErrorCode::kInvalidArgument, "{}: cannot list: {}", p, ec.message());
      std::sort(found.begin(), found.end());
    } else {
      found.push_back(p);
    }
    for (const fs::path& f : found) {
      const fs::path canon = fs::weakly_canonical(f, ec);
      if (!seen.insert(ec ? f : canon).second) continue;
      files.push_back(f.string());
    }
  }
  Corpus c;
  int64_t counter = 0;
  for (const std::string& f : files) {
    if (c.bytes > max_bytes) break;
    HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(f, max_bytes - c.bytes + 1));
    c.bytes += text.size();
    if (c.bytes > max_bytes) {
      return make_error(ErrorCode::kResourceExhausted, "the corpus is larger than {} MiB; train on a part of it",
                        max_bytes >> 20);
    }
    if (const size_t bad = first_invalid_utf8(text); bad < text.size()) {
      return make_error(
          ErrorCode::kInvalidArgument,
          "{}: not UTF-8 text (invalid byte 0x{:02X} at offset {}); convert it (e.g. iconv -t UTF-8) or leave it out",
          f, static_cast<unsigned char>(text[bad]), bad);
    }
    std::string train, eval;
    split_document(text, eval_frac, counter, train, eval);
    if (train.empty() && eval.empty()) continue;
    c.sources.push_back(f);
    c.train.push_back(std::move(train));
    c.eval.push_back(std::move(eval));
  }
  if (c.train.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "the corpus is empty: no text in {} file(s)", files.size());
  }
  return c;
}

std::vector<int32_t> tokenize_documents(const tokenizer::Tokenizer& tok, const std::vector<std::string>& docs) {
  std::vector<int32_t> out;
  for (const std::string& d : docs) {
    if (d.empty()) continue;
    const auto ids = tok.encode(d, /*add_special=*/true, /*parse_special=*/false);
    out.insert(out.end(), ids.begin(), ids.end());
    if (tok.eos() >= 0) out.push_back(tok.eos());
  }
  return out;
}

double unigram_perplexity(const std::vector<int32_t>& train, const std::vector<int32_t>& eval, int64_t n_vocab) {
  std::vector<double> count(static_cast<size_t>(n_vocab), 1.0);  // add-one smoothing
  for (int32_t t : train) count[static_cast<size_t>(t)] += 1.0;
  const double total = static_cast<double>(train.size() + static_cast<size_t>(n_vocab));
  if (eval.size() < 2) return std::nan("");
  double nll = 0.0;
  // The same positions the model is scored on: every token but the first.
  for (size_t i = 1; i < eval.size(); ++i) nll -= std::log(count[static_cast<size_t>(eval[i])] / total);
  return std::exp(nll / static_cast<double>(eval.size() - 1));
}

}  // namespace hearth::train
