// Chat template families: detection from Jinja markers and the rendered prompts. Expected
// strings are written out from each family's published reference template.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hearth/engine/chat_template.h"
#include "shared_data.h"

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

namespace hearth::engine {
namespace {

// The model's own template through ChatFormat (what the server's chat path runs): every real
// template of ../shared/chat-templates, on each conversation of plain role/content messages with
// a generation prompt, gives the reference renderer's bytes (or fails where it raised), and the
// BOS is left to the tokenizer only when the prompt does not already start with it.
TEST(ChatFormat, TheModelsOwnTemplateRendersLikeTheReference) {
  HEARTH_REQUIRE_SHARED(shared);
  const auto ct = shared / "chat-templates";
  const auto cases = nlohmann::ordered_json::parse(testing::read_text(ct / "cases.json"));
  const auto tokens = nlohmann::ordered_json::parse(testing::read_text(ct / "templates.json"));
  std::tm now{};
  now.tm_year = 2025 - 1900, now.tm_mon = 2, now.tm_mday = 5, now.tm_hour = 9, now.tm_min = 7, now.tm_wday = 3;
  now.tm_yday = 63;
  ChatRenderOptions at_now;
  at_now.now = &now;
  int rendered = 0, raised = 0;
  for (const auto& [name, tok] : tokens.items()) {
    auto format = ChatFormat::for_model(testing::read_text(ct / (name + ".jinja")), "");
    ASSERT_TRUE(format.ok()) << name;
    ASSERT_TRUE(format->is_jinja()) << name;
    const std::string bos = tok["bos_token"], eos = tok["eos_token"];
    for (const auto& c : cases) {
      if (!c["add_generation_prompt"].get<bool>() || c.contains("tools")) continue;
      std::vector<ChatMessage> messages;
      bool plain = true;
      for (const auto& m : c["messages"]) {
        plain = plain && m.size() == 2 && m["content"].is_string();
        if (plain) messages.push_back({m["role"], m["content"]});
      }
      if (!plain) continue;
      const std::string pair = name + "__" + c["name"].get<std::string>();
      auto r = format->render(messages, bos, eos, at_now);
      if (std::filesystem::exists(ct / "expected" / (pair + ".error"))) {
        EXPECT_FALSE(r.ok()) << pair;
        if (!r.ok()) {
          EXPECT_NE(r.status().message().find("chat template: line "), std::string::npos) << pair;
        }
        ++raised;
        continue;
      }
      ASSERT_TRUE(r.ok()) << pair << ": " << r.status().to_string();
      EXPECT_EQ(r->prompt, testing::read_text(ct / "expected" / (pair + ".txt"))) << pair;
      EXPECT_EQ(r->add_bos, bos.empty() || r->prompt.rfind(bos, 0) != 0) << pair;
      ++rendered;
    }
  }
  EXPECT_EQ(tokens.size(), 45u);
  EXPECT_GE(rendered, 45 * 4);  // single-user, system-user, multi-turn, non-ascii, empty-content
  std::printf("%d renders matched, %d refusals\n", rendered, raised);
  // Llama 3.1 writes its BOS itself: the tokenizer must not add a second one.
  auto llama = ChatFormat::for_model(testing::read_text(ct / "meta-llama-Llama-3.1-8B-Instruct.jinja"), "");
  auto r = llama->render({{"user", "Hi"}}, "<|begin_of_text|>", "<|eot_id|>", at_now);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->add_bos);
}

TEST(ChatFormat, FallsBackToAFamilyAndHonoursTheOverride) {
  std::string warning;
  // A template the interpreter cannot parse: its markers pick the built-in family, with a warning.
  auto broken = ChatFormat::for_model("{% for m in messages %}<|im_start|>{{ m.role }", "", &warning);
  ASSERT_TRUE(broken.ok());
  EXPECT_FALSE(broken->is_jinja());
  EXPECT_EQ(broken->name(), "chatml");
  EXPECT_NE(warning.find("does not parse"), std::string::npos) << warning;
  // --chat-template NAME wins over the model's template.
  auto forced = ChatFormat::for_model("{{ messages[0].content }}", "llama3");
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->name(), "llama3");
  EXPECT_FALSE(ChatFormat::for_model("{{ x }}", "no-such-family").ok());
  // No template: plain.
  EXPECT_EQ(ChatFormat::for_model("", "")->name(), "plain");
  // A template that refuses (raise_exception) names its line and keeps its own words.
  auto strict = ChatFormat::for_model(
      "{% if messages[0].role != 'system' %}\n{{ raise_exception('a system message comes first') }}{% endif %}", "");
  ASSERT_TRUE(strict.ok());
  auto r = strict->render({{"user", "Hi"}}, "<s>", "</s>");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "chat template: line 2: a system message comes first");
}

}  // namespace
}  // namespace hearth::engine
