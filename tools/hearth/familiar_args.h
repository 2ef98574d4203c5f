// What users type from habit: llama.cpp's multi-letter single-dash flags, which CLI11 cannot
// parse (it reads "-np" as "-n -p"), and "did you mean" for a mistyped command or flag.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace hearth::cli {

// argv with llama.cpp's spellings rewritten: "-np" -> "--parallel", "-ngl" -> "--n-gpu-layers"
// (also "-ngl=99" and "-ngl99"). Other arguments are kept as they are.
std::vector<std::string> rewrite_familiar_args(int argc, char** argv);

// The candidate nearest to `word` (edit distance at most a third of its length, at least 1 and
// at most 3), or nullopt.
std::optional<std::string> nearest_word(const std::string& word, const std::vector<std::string>& candidates);

// For arguments that CLI11 refused: "unknown command 'srve'; did you mean 'serve'?" or "unknown
// option '--temprature' for 'hearth run'; did you mean '--temperature'?". nullopt when there
// is nothing better to say than CLI11's message.
std::optional<std::string> explain_unknown_argument(CLI::App& app, const std::vector<std::string>& args);

}  // namespace hearth::cli
