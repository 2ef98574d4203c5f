// Parsing and validation of OpenAI API request bodies into engine parameters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/engine/chat_template.h"
#include "hearth/engine/generation.h"
#include "hearth/engine/json_schema.h"
#include "hearth/server/api_error.h"

namespace hearth::server {

// Deepest nesting of arrays and objects a request body may have. Checked on the raw bytes
// before the JSON library parses (its dump and the schema walk recurse once per level).
inline constexpr int kMaxJsonDepth = 64;
// Stop strings: at most this many, each at most this many bytes (the matcher's state and
// its per-token work grow with their total length).
inline constexpr size_t kMaxStopStrings = 4;
inline constexpr size_t kMaxStopBytes = 256;
// Inputs per /v1/embeddings request (each is one scheduler task; the scheduler's default
// --max-queue holds a whole batch).
inline constexpr size_t kMaxEmbeddingInputs = 256;

struct RequestLimits {
  int64_t max_tokens = -1;  // cap on max_tokens (-1: the context)
  int max_n = 8;            // cap on n
};

// The deepest nesting of arrays and objects in JSON text, counting brackets outside strings.
// Stops counting (and returns a value > limit) once `limit` is passed, so the scan is O(bytes)
// and allocation-free whatever the input. Malformed text is left to the parser.
int json_nesting_depth(std::string_view text, int limit = kMaxJsonDepth);

// One entry of a "lora" list: an adapter id (its index in GET /lora-adapters) and its scale.
struct LoraScale {
  int64_t id = 0;
  float scale = 0.0f;
};
// Scales are finite and at most this large in magnitude.
inline constexpr double kMaxLoraScale = 1000.0;
// The adapters one list may name.
inline constexpr size_t kMaxLoraEntries = 64;

// Tools a request may declare (each one's schema is parsed when a call is forced).
inline constexpr size_t kMaxTools = 128;
// Tool calls one assistant message in the history may carry.
inline constexpr size_t kMaxToolCallsPerMessage = 64;

struct ToolSpec {
  std::string name;
  std::string parameters_json;  // the function's JSON Schema, compact ("" when absent)
};

enum class ToolChoice { kAuto, kNone, kRequired, kNamed };

struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::vector<engine::ChatMessage> messages;  // chat
  std::string prompt;                         // completions, text prompt
  std::vector<int32_t> prompt_tokens;         // completions, token prompt
  bool prompt_is_tokens = false;
  engine::GenerationParams gen;  // prompt left empty: the server tokenizes
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
  std::vector<std::string> skipped_schema_keywords;  // best effort: keywords not enforced
  // "lora": [{"id": 0, "scale": 0.2}, ...] (llama.cpp server): the adapter scales for this
  // request only; adapters it does not list get scale 0. Absent: the server's global scales.
  std::optional<std::vector<LoraScale>> lora;
  // Tools (chat): `tools` as given (compact JSON, for the template; empty: none), their names
  // and schemas, tool_choice (auto when tools are given, else none) and parallel_tool_calls.
  std::string tools_json;
  std::vector<ToolSpec> tools;
  ToolChoice tool_choice = ToolChoice::kNone;
  std::string tool_choice_name;  // kNamed
  bool parallel_tool_calls = true;
};

// Sampling defaults when a request leaves a field out: temperature 1, top_p 1 (as OpenAI),
// and hearth's top_k 40 and min_p 0.05 (extras, settable per request). Extra fields: top_k,
// min_p, repeat_penalty, ignore_eos.
ApiResult<CompletionRequest> parse_completion_request(std::string_view body, bool chat, const RequestLimits& limits);

// The body of POST /lora-adapters: [{"id": 0, "scale": 0.5}, ...]. Ids are checked against
// the server's adapters by the caller; here: the shape, id >= 0, no id twice, finite scales.
ApiResult<std::vector<LoraScale>> parse_lora_scales(std::string_view body);

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

// Converts a JSON Schema (JSON text) into the subset the engine enforces, and checks that
// the engine's matcher can run it within its budgets (JsonConstraint::create). A keyword
// hearth cannot enforce (pattern, format, minimum, ...) is an error naming it, unless
// `best_effort` (the request's "hearth_schema_best_effort": true), which skips such keywords
// and lists them in `skipped` (for the log).
ApiResult<engine::JsonSchema> parse_json_schema(std::string_view schema_json, bool best_effort = false,
                                                std::vector<std::string>* skipped = nullptr);

// Replaces every ill-formed UTF-8 sequence with U+FFFD.
std::string sanitize_utf8(std::string_view text);

}  // namespace hearth::server
