#include "familiar_args.h"

#include <algorithm>
#include <array>
#include <utility>

namespace hearth::cli {
namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kSpellings{{
    {"-np", "--parallel"},
    {"-ngl", "--n-gpu-layers"},
    {"-ctk", "--cache-type-k"},
    {"-ctv", "--cache-type-v"},
}};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<CLI::App*> all_subcommands(CLI::App& app) {
  return app.get_subcommands([](CLI::App*) { return true; });
}

CLI::App* find_subcommand(CLI::App& app, const std::string& name) {
  for (CLI::App* s : all_subcommands(app)) {
    if (s->check_name(name)) return s;
  }
  return nullptr;
}

// The long and short names of a command's options ("--temperature", "-t").
std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> out;
  for (const CLI::Option* o : app.get_options()) {
    for (const std::string& l : o->get_lnames()) out.push_back("--" + l);
    for (const std::string& s : o->get_snames()) out.push_back("-" + s);
  }
  return out;
}

bool known_option(const CLI::App& app, const std::string& arg) {
  const std::vector<std::string> names = option_names(app);
  return std::find(names.begin(), names.end(), arg) != names.end();
}

}  // namespace

std::vector<std::string> rewrite_familiar_args(int argc, char** argv) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(argc));
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0) {
      for (const auto& [from, to] : kSpellings) {
        if (a == from) {
          a = std::string(to);
        } else if (a.starts_with(std::string(from) + "=")) {
          a = std::string(to) + a.substr(from.size());
        } else if (a.size() > from.size() && a.starts_with(from) && std::isdigit(static_cast<unsigned char>(a[from.size()]))) {
          out.push_back(std::string(to));  // "-ngl99"
          a = a.substr(from.size());
        }
      }
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::optional<std::string> nearest_word(const std::string& word, const std::vector<std::string>& candidates) {
  const size_t limit = std::clamp<size_t>(word.size() / 3, 1, 3);
  std::optional<std::string> best;
  size_t best_d = limit + 1;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

std::optional<std::string> explain_unknown_argument(CLI::App& app, const std::vector<std::string>& args) {
  if (args.size() < 2) return std::nullopt;
  const std::string& first = args[1];
  if (!first.starts_with("-")) {
    CLI::App* sub = find_subcommand(app, first);
    if (sub == nullptr) {
      std::vector<std::string> names;
      for (CLI::App* s : all_subcommands(app)) names.push_back(s->get_name());
      std::string msg = "unknown command '" + first + "'";
      if (auto near = nearest_word(first, names)) msg += "; did you mean '" + *near + "'?";
      return msg + " (hearth --help lists the commands)";
    }
    // Walk down nested subcommands ("store import").
    std::string path = "hearth " + sub->get_name();
    size_t i = 2;
    while (i < args.size() && !args[i].starts_with("-")) {
      CLI::App* next = find_subcommand(*sub, args[i]);
      if (next == nullptr) break;
      sub = next;
      path += " " + sub->get_name();
      ++i;
    }
    if (sub->get_require_subcommand_min() > 0 && i < args.size() && !args[i].starts_with("-")) {
      std::vector<std::string> names;
      for (CLI::App* s : all_subcommands(*sub)) names.push_back(s->get_name());
      std::string msg = "unknown command '" + args[i] + "' for '" + path + "'";
      if (auto near = nearest_word(args[i], names)) msg += "; did you mean '" + *near + "'?";
      return msg;
    }
    for (; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "--") break;
      if (!a.starts_with("-") || a == "-") continue;
      const std::string name = a.substr(0, a.find('='));
      if (known_option(*sub, name) || known_option(app, name)) continue;
      if (!name.starts_with("--") && name.size() > 2) continue;  // "-t4": a short flag with its value
      std::string msg = "unknown option '" + name + "' for '" + path + "'";
      if (auto near = nearest_word(name, option_names(*sub))) msg += "; did you mean '" + *near + "'?";
      return msg + " (" + path + " --help lists its options)";
    }
  }
  return std::nullopt;
}

}  // namespace hearth::cli
