// Chat templates: turns a list of chat messages into the prompt text a model was trained on.
//
// A model's own `tokenizer.chat_template` is rendered by hearth's Jinja interpreter
// (hearth/jinja) through ChatFormat. The built-in families below are the fallback: for models
// without a template, for a template the interpreter cannot parse, and for --chat-template
// NAME. They recognise the common template families by their marker tokens and render them
// with hand-written formatters that follow each family's reference template. Models with no
// template (or an unrecognised one) use the plain format:
//
//   System: <content>\n\nUser: <content>\n\nAssistant: <content>\n\n ... Assistant:
//
// with "\n\nUser:" as an implicit stop string.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::gguf {
class GgufFile;
}

namespace hearth::engine {

enum class ChatTemplateFamily { kPlain, kLlama2, kLlama3, kChatMl, kMistral, kZephyr, kGemma, kPhi3 };

struct ChatMessage {
  ChatMessage() = default;
  ChatMessage(std::string r, std::string c, std::string j = {})
      : role(std::move(r)), content(std::move(c)), json(std::move(j)) {}

  std::string role;  // "system", "user", "assistant" (others are rendered with their name)
  std::string content;
  // The whole message as compact JSON text, for a Jinja template: tool_calls (with their
  // arguments as objects, the transformers convention), tool_call_id, name, a null content.
  // Empty: the template sees {role, content}. The built-in families use role and content only.
  std::string json;
};

// How a model writes a tool call, as its template (or family) shows:
//   kHermes   <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Hermes, Qwen 2.5/3, ...)
//   kLlama3   {"name": ..., "parameters": {...}} as the whole reply, after an optional <|python_tag|>
//   kMistral  [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...] or [TOOL_CALLS]name[ARGS]{...}
//   kJson     any of the JSON forms above (templates that show none of these markers)
enum class ToolCallSyntax { kJson, kHermes, kLlama3, kMistral };
std::string_view tool_call_syntax_name(ToolCallSyntax syntax);
// From a template's source; `family` decides when the source is empty (built-in formats).
ToolCallSyntax detect_tool_call_syntax(std::string_view template_source, ChatTemplateFamily family);

struct ChatRenderOptions {
  std::string_view tools_json;       // the request's `tools` as a JSON array; empty: none
  bool add_generation_prompt = true;
  const std::tm* now = nullptr;      // the time strftime_now gives (tests); null: the local clock
};

// The lower-case name used by --chat-template ("plain", "llama2", "llama3", "chatml",
// "mistral", "zephyr", "gemma", "phi3").
std::string_view chat_template_name(ChatTemplateFamily family);

// Parses a --chat-template NAME ("qwen" is accepted as chatml).
Result<ChatTemplateFamily> parse_chat_template_name(std::string_view name);

// Recognises the family of a Jinja template by its markers; nullopt when none matches.
std::optional<ChatTemplateFamily> detect_chat_template(std::string_view jinja);

struct RenderedChat {
  std::string prompt;                     // to be tokenized with special tokens parsed
  std::vector<std::string> stop_strings;  // implicit stops of the format (plain: "\n\nUser:")
  // Whether the tokenizer should add its BOS: false when the prompt already starts with the BOS
  // text (a Jinja template that writes bos_token itself).
  bool add_bos = true;
};

// Renders messages followed by the prompt for the assistant's reply. The first BOS token is
// not written: the tokenizer adds it. `bos_text` / `eos_text` are the texts of the BOS and EOS
// tokens (e.g. "<s>", "</s>"), used by families that open or close later turns with them.
// Errors for an empty message list.
Result<RenderedChat> render_chat(ChatTemplateFamily family, const std::vector<ChatMessage>& messages,
                                 std::string_view bos_text, std::string_view eos_text);

// How a model's chats are rendered: its own Jinja template, or a built-in family.
class ChatFormat {
 public:
  ChatFormat() = default;  // the plain family
  explicit ChatFormat(ChatTemplateFamily family) : family_(family), tool_syntax_(detect_tool_call_syntax("", family)) {}
  // For a model: `override_name` (--chat-template NAME) picks a family; else the model's
  // `template_source` (tokenizer.chat_template; empty: none) is parsed and used; a template that
  // does not parse falls back to the family its markers show (or plain), with `warning` saying so.
  static Result<ChatFormat> for_model(std::string_view template_source, std::string_view override_name,
                                      std::string* warning = nullptr);
  // for_model() with the file's tokenizer.chat_template (none when the key is absent).
  static Result<ChatFormat> for_gguf(const gguf::GgufFile& file, std::string_view override_name,
                                     std::string* warning = nullptr);

  // Renders the messages and the generation prompt. Jinja errors name the template's line
  // ("chat template: line 12: ..."; a raise_exception message is the template's own). Tools
  // reach only a Jinja template; the built-in families render role and content.
  Result<RenderedChat> render(const std::vector<ChatMessage>& messages, std::string_view bos_text,
                              std::string_view eos_text, const ChatRenderOptions& options = {}) const;
  // "jinja" (the model's own template) or the family's name.
  std::string name() const;
  bool is_jinja() const { return jinja_ != nullptr; }
  ToolCallSyntax tool_call_syntax() const { return tool_syntax_; }

 private:
  struct Jinja;
  ChatTemplateFamily family_ = ChatTemplateFamily::kPlain;
  ToolCallSyntax tool_syntax_ = ToolCallSyntax::kJson;
  std::shared_ptr<const Jinja> jinja_;
};

}  // namespace hearth::engine
