// Chat templates: turns a list of chat messages into the prompt text a model was trained on.
//
// hearth does not run Jinja. It recognises the common template families by their marker
// tokens in `tokenizer.chat_template` and renders them with hand-written formatters that
// follow each family's reference template. Models with no template (or an unrecognised one)
// use the plain format:
//
//   System: <content>\n\nUser: <content>\n\nAssistant: <content>\n\n ... Assistant:
//
// with "\n\nUser:" as an implicit stop string.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::engine {

enum class ChatTemplateFamily { kPlain, kLlama2, kLlama3, kChatMl, kMistral, kZephyr, kGemma, kPhi3 };

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (others are rendered with their name)
  std::string content;
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
};

// Renders messages followed by the prompt for the assistant's reply. The first BOS token is
// not written: the tokenizer adds it. `bos_text` / `eos_text` are the texts of the BOS and EOS
// tokens (e.g. "<s>", "</s>"), used by families that open or close later turns with them.
// Errors for an empty message list.
Result<RenderedChat> render_chat(ChatTemplateFamily family, const std::vector<ChatMessage>& messages,
                                 std::string_view bos_text, std::string_view eos_text);

}  // namespace hearth::engine
