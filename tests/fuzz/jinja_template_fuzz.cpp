// libFuzzer target: a chat template from a stranger (tokenizer.chat_template of a downloaded
// GGUF). Template::parse and render must never crash, hang or grow without bound: every failure
// is a Status with a message. The render uses a small conversation with tools and tight limits
// so that each input runs in milliseconds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hearth/jinja/json_value.h"
#include "hearth/jinja/template.h"

namespace {

hearth::jinja::Context sample_context() {
  hearth::jinja::Context ctx;
  auto messages = hearth::jinja::parse_json_value(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Zürich? <&>"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "abc123def", "type": "function",
      "function": {"name": "get_weather", "arguments": {"location": "Zürich", "unit": "celsius"}}}]},
    {"role": "tool", "tool_call_id": "abc123def", "name": "get_weather", "content": "{\"t\": 21.5}"},
    {"role": "assistant", "content": "21.5 °C."}])");
  auto tools = hearth::jinja::parse_json_value(R"([{"type": "function", "function": {"name": "get_weather",
    "description": "Weather.", "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
    "required": ["location"]}}}])");
  if (!messages.ok() || !tools.ok()) std::abort();
  ctx.messages = *messages;
  ctx.tools = *tools;
  ctx.add_generation_prompt = true;
  ctx.bos_token = "<s>";
  ctx.eos_token = "</s>";
  ctx.now = std::tm{};
  ctx.limits.max_steps = 200'000;
  ctx.limits.max_output_bytes = 1u << 20;
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const hearth::jinja::Context ctx = sample_context();
  auto t = hearth::jinja::Template::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  // kInternal means a library threw where the interpreter expected nothing: a bug to find.
  if (!t.ok()) {
    if (t.status().message().empty() || t.status().code() == hearth::ErrorCode::kInternal) std::abort();
    return 0;
  }
  auto out = t->render(ctx);
  if (!out.ok() && (out.status().message().empty() || out.status().code() == hearth::ErrorCode::kInternal)) std::abort();
  if (out.ok() && out->size() > ctx.limits.max_output_bytes) std::abort();
  return 0;
}
