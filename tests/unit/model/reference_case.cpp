#include "reference_case.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace hearth::testing {

ReferenceCase load_reference_case(const std::filesystem::path& dir, const std::string& stem) {
  std::ifstream in(dir / (stem + ".json"));
  if (!in) throw std::runtime_error("cannot open " + (dir / (stem + ".json")).string());
  nlohmann::json j = nlohmann::json::parse(in);
  ReferenceCase c;
  c.model = j.at("model").get<std::string>();
  c.prompt_ids = j.at("prompt_ids").get<std::vector<int32_t>>();
  c.generated_ids = j.at("generated_ids").get<std::vector<int32_t>>();
  c.generated_margins = j.at("generated_margins").get<std::vector<float>>();
  c.n_vocab = j.at("n_vocab").get<int64_t>();
  const auto logits_path = dir / j.at("logits_file").get<std::string>();
  std::ifstream lf(logits_path, std::ios::binary);
  if (!lf) throw std::runtime_error("cannot open " + logits_path.string());
  c.logits.resize(static_cast<size_t>(c.n_positions() * c.n_vocab));
  lf.read(reinterpret_cast<char*>(c.logits.data()), static_cast<std::streamsize>(c.logits.size() * sizeof(float)));
  if (lf.gcount() != static_cast<std::streamsize>(c.logits.size() * sizeof(float))) {
    throw std::runtime_error("short logits file " + logits_path.string());
  }
  return c;
}

std::filesystem::path model_path(const std::filesystem::path& shared, const std::string& model_stem) {
  if (model_stem.rfind("synth-", 0) == 0) return shared / "models" / "synth" / (model_stem + ".gguf");
  return shared / "models" / (model_stem + ".gguf");
}

}  // namespace hearth::testing
