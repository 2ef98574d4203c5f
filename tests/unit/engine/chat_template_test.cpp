// Chat template families: detection from Jinja markers and the rendered prompts. Expected
// strings are written out from each family's published reference template.
#include <gtest/gtest.h>

#include "hearth/engine/chat_template.h"

namespace hearth::engine {
namespace {

const std::vector<ChatMessage> kChat{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};

std::string render(ChatTemplateFamily f, const std::vector<ChatMessage>& m = kChat) {
  auto r = render_chat(f, m, "<s>", "</s>");
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r->prompt : std::string();
}

TEST(ChatTemplate, DetectsFamiliesByMarkers) {
  EXPECT_EQ(detect_chat_template("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}"),
            ChatTemplateFamily::kLlama3);
  EXPECT_EQ(detect_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}"), ChatTemplateFamily::kChatMl);
  EXPECT_EQ(detect_chat_template("<start_of_turn>user"), ChatTemplateFamily::kGemma);
  EXPECT_EQ(detect_chat_template("<|user|>\n{{ content }}<|end|>"), ChatTemplateFamily::kPhi3);
  EXPECT_EQ(detect_chat_template("<|user|>\n{{ content }}{{ eos_token }}"), ChatTemplateFamily::kZephyr);
  EXPECT_EQ(detect_chat_template("[INST] <<SYS>>\n{{ system }}"), ChatTemplateFamily::kLlama2);
  EXPECT_EQ(detect_chat_template("{{ bos_token }}[INST] {{ m }} [/INST]"), ChatTemplateFamily::kMistral);
  EXPECT_EQ(detect_chat_template("{{ whatever }}"), std::nullopt);
}

TEST(ChatTemplate, ParsesNames) {
  EXPECT_EQ(parse_chat_template_name("chatml").value(), ChatTemplateFamily::kChatMl);
  EXPECT_EQ(parse_chat_template_name("qwen").value(), ChatTemplateFamily::kChatMl);
  EXPECT_EQ(parse_chat_template_name("llama3").value(), ChatTemplateFamily::kLlama3);
  auto bad = parse_chat_template_name("jinja");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'jinja'"), std::string::npos);
}

TEST(ChatTemplate, ChatMl) {
  EXPECT_EQ(render(ChatTemplateFamily::kChatMl),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(render(ChatTemplateFamily::kLlama3),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama2) {
  // BOS of the first turn comes from the tokenizer.
  EXPECT_EQ(render(ChatTemplateFamily::kLlama2),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]");
}

TEST(ChatTemplate, Mistral) {
  EXPECT_EQ(render(ChatTemplateFamily::kMistral), "[INST] Be brief.\n\nHi [/INST]Hello!</s>[INST] Bye [/INST]");
}

TEST(ChatTemplate, Zephyr) {
  EXPECT_EQ(
      render(ChatTemplateFamily::kZephyr),
      "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\n");
}

TEST(ChatTemplate, Gemma) {
  EXPECT_EQ(render(ChatTemplateFamily::kGemma),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, Phi3) {
  EXPECT_EQ(render(ChatTemplateFamily::kPhi3),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nBye<|end|>\n"
            "<|assistant|>\n");
}

TEST(ChatTemplate, PlainFallbackHasAnImplicitStop) {
  auto r = render_chat(ChatTemplateFamily::kPlain, {{"user", "Hi"}}, "<s>", "</s>");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->prompt, "User: Hi\n\nAssistant:");
  EXPECT_EQ(r->stop_strings, std::vector<std::string>{"\n\nUser:"});
}

TEST(ChatTemplate, EmptyMessagesFail) { EXPECT_FALSE(render_chat(ChatTemplateFamily::kChatMl, {}, "", "").ok()); }

}  // namespace
}  // namespace hearth::engine
