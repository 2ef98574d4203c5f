// Parsing and validation of OpenAI API request bodies into engine parameters.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/engine/chat_template.h"
#include "hearth/engine/generation.h"
#include "hearth/engine/json_schema.h"
#include "hearth/server/api_error.h"

namespace hearth::server {

struct RequestLimits {
  int64_t max_tokens = -1;  // cap on max_tokens (-1: the context)
  int max_n = 8;            // cap on n
};

struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::vector<engine::ChatMessage> messages;  // chat
  std::string prompt;                         // completions, text prompt
  std::vector<int32_t> prompt_tokens;         // completions, token prompt
  bool prompt_is_tokens = false;
  engine::GenerationParams gen;               // prompt left empty: the server tokenizes
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
};

// Sampling defaults when a request leaves a field out: temperature 1, top_p 1 (as OpenAI),
// and hearth's top_k 40 and min_p 0.05 (extras, settable per request). Extra fields: top_k,
// min_p, repeat_penalty, ignore_eos.
ApiResult<CompletionRequest> parse_completion_request(std::string_view body, bool chat, const RequestLimits& limits);

struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> token_inputs;
  bool base64 = false;
};
ApiResult<EmbeddingRequest> parse_embedding_request(std::string_view body);

struct TokenizeRequest {
  std::string content;
  bool add_special = false;
  bool with_pieces = false;
};
ApiResult<TokenizeRequest> parse_tokenize_request(std::string_view body);
ApiResult<std::vector<int32_t>> parse_detokenize_request(std::string_view body);

// Converts a JSON Schema (JSON text) into the subset the engine enforces.
ApiResult<engine::JsonSchema> parse_json_schema(std::string_view schema_json);

// Replaces every ill-formed UTF-8 sequence with U+FFFD.
std::string sanitize_utf8(std::string_view text);

}  // namespace hearth::server
