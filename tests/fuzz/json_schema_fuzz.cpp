// libFuzzer target: JSON-schema compilation and the constrained-decoding matcher. The input is
// a schema, optionally followed by a NUL byte and text to feed the matcher. A schema is either
// refused with a message or compiles; the matcher then stays within its work budget and its
// answers agree with each other (accepts(x) == advance(x) succeeded, state unchanged on refusal).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <variant>

#include "hearth/engine/json_constraint.h"
#include "hearth/server/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view schema_text = in.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  const bool best_effort = size > 0 && (data[size - 1] & 1) != 0;
  std::vector<std::string> skipped;
  auto r = hearth::server::parse_json_schema(schema_text, best_effort, &skipped);
  if (const auto* e = std::get_if<hearth::server::ApiError>(&r)) {
    if (e->status != 400 || e->message.empty()) std::abort();
    return 0;
  }
  auto schema = std::make_shared<hearth::engine::JsonSchema>(std::get<hearth::engine::JsonSchema>(std::move(r)));
  // A small budget, so that slow schemas show up as over budget rather than as timeouts.
  schema->budget = hearth::engine::JsonWorkBudget{1u << 16, 1u << 20};
  auto c = hearth::engine::JsonConstraint::create(schema);
  if (!c.ok()) std::abort();  // parse_json_schema checked the same
  // Feed the text in small pieces, as tokens would come.
  for (size_t i = 0; i < text.size(); i += 3) {
    const std::string_view piece = text.substr(i, 3);
    c->reset_token_work();
    const bool accepted = c->accepts(piece);
    const bool budget_hit = c->over_budget();
    c->reset_token_work();
    const bool advanced = c->advance(piece);
    if (!budget_hit && !c->over_budget() && accepted != advanced) std::abort();
    // Checked between bytes: one byte past the budget at most (paths x alternatives/literals).
    if (c->token_work() > 2 * c->budget().per_token + (uint64_t{1} << 20)) std::abort();
    if (!advanced) break;
    if (c->dead()) std::abort();
    if (c->must_end() && !c->can_end()) std::abort();
  }
  return 0;
}
