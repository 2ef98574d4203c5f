// Running the hearth executable as a user would: exit code, stdout and stderr; and the checks on
// error output shared by the CLI tests.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "run_command.h"
#include "shared_data.h"

namespace hearth::cli_test {

struct Output {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline Output run(const std::string& args, const std::string& stdin_text = "") {
  std::filesystem::path dir = testing::make_temp_dir("hearth-cli");
  const std::string in = (dir / "in").string(), err = (dir / "err").string();
  std::ofstream(in) << stdin_text;
  auto r = testing::run_command(std::string(HEARTH_BIN) + " " + args + " <" + in + " 2>" + err);
  Output o;
  o.out = std::move(r.out);
  o.exit_code = r.exit_code;
  std::ifstream ef(err);
  o.err.assign(std::istreambuf_iterator<char>(ef), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  return o;
}

// Number of lines that start with "error: " (warnings, e.g. "unverified local file", may precede).
inline int count_error_lines(const std::string& s) {
  int n = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string::npos) end = s.size();
    n += s.compare(pos, 7, "error: ") == 0;
    pos = end + 1;
  }
  return n;
}

// The last line of the output starts with "error: ".
inline bool ends_with_error_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t nl = t.rfind('\n');
  return t.compare(nl == std::string::npos ? 0 : nl + 1, 7, "error: ") == 0;
}

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

}  // namespace hearth::cli_test
