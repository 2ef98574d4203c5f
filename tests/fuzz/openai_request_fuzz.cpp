// libFuzzer target: any request body through the OpenAI request parsers (chat, completions,
// embeddings, tokenize, detokenize) must give a request or a 4xx error, never a crash, a hang
// or deep recursion; a schema that parses must compile into a matcher.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "hearth/engine/json_constraint.h"
#include "hearth/server/openai_request.h"

namespace {

using namespace hearth::server;

template <typename T>
void check(const ApiResult<T>& r) {
  if (const auto* e = std::get_if<ApiError>(&r)) {
    if (e->status < 400 || e->status > 499 || e->message.empty()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  RequestLimits limits;
  limits.max_tokens = 512;
  for (bool chat : {true, false}) {
    auto r = parse_completion_request(body, chat, limits);
    check(r);
    if (const auto* req = std::get_if<CompletionRequest>(&r)) {
      if (req->gen.stop.size() > kMaxStopStrings) std::abort();
      for (const auto& s : req->gen.stop) {
        if (s.size() > kMaxStopBytes) std::abort();
      }
      if (req->gen.json_schema) {
        auto c = hearth::engine::JsonConstraint::create(req->gen.json_schema);
        if (!c.ok()) std::abort();  // parse_json_schema already ran create()
        (void)c->advance(R"({"a": [1, "x", null]})");
      }
    }
  }
  check(parse_embedding_request(body));
  check(parse_tokenize_request(body));
  check(parse_detokenize_request(body));
  return 0;
}
