// The training text: files (or directories of files) read as UTF-8 documents, split into
// training and held-out paragraphs, and turned into the packed token streams the trainer reads
// (<s> document </s> <s> document </s> ...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/tokenizer/tokenizer.h"

namespace hearth::train {

struct Corpus {
  std::vector<std::string> sources;  // the files read, in order
  std::vector<std::string> train;    // per document: its training paragraphs
  std::vector<std::string> eval;     // per document: its held-out paragraphs (may be empty)
  uint64_t bytes = 0;
};

// Reads every path (a directory: its regular files, recursively, in name order; a file reached
// twice, e.g. through a symlink, once). Errors: a missing path, text that is not UTF-8 (naming
// the file and the byte offset), an empty corpus, more than max_bytes in all.
Result<Corpus> read_corpus(const std::vector<std::string>& paths, double eval_frac,
                           uint64_t max_bytes = uint64_t{1} << 30);

// Splits one document into paragraphs (blank-line separated) and deals every k-th one
// (k = round(1 / eval_frac)) to the held-out set, counting across documents from `counter`.
void split_document(const std::string& text, double eval_frac, int64_t& counter, std::string& train, std::string& eval);

// <s> doc </s> for each document.
std::vector<int32_t> tokenize_documents(const tokenizer::Tokenizer& tok, const std::vector<std::string>& docs);

// Perplexity of an add-one-smoothed unigram model fitted on `train` and scored on `eval`: the
// baseline the trained model's perplexity is compared with.
double unigram_perplexity(const std::vector<int32_t>& train, const std::vector<int32_t>& eval, int64_t n_vocab);

}  // namespace hearth::train
