// `hearth template render` on pairs of ../shared/chat-templates: the prompt is printed byte for
// byte (no newline added), and a template's raise_exception ends the command with its message.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_helpers.h"
#include "hearth/gguf/gguf_writer.h"

namespace hearth {
namespace {

using cli_test::quote;
using cli_test::run;

std::filesystem::path write_file(const std::filesystem::path& dir, const std::string& name, const std::string& text) {
  const auto p = dir / name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// Renders pair NAME__CASE through the CLI, with the case's messages and tools written as one
// {"messages", "tools"} file, and compares with expected/NAME__CASE.txt.
void expect_pair(const std::filesystem::path& ct, const std::string& name, const std::string& case_name) {
  const auto cases = nlohmann::ordered_json::parse(testing::read_text(ct / "cases.json"));
  const auto tokens = nlohmann::ordered_json::parse(testing::read_text(ct / "templates.json"))[name];
  for (const auto& c : cases) {
    if (c["name"] != case_name) continue;
    const auto dir = testing::make_temp_dir("hearth-cli-template");
    nlohmann::ordered_json file = {{"messages", c["messages"]}};
    if (c.contains("tools")) file["tools"] = c["tools"];
    const auto messages = write_file(dir, "m.json", file.dump());
    auto o = run("template render --template " + quote((ct / (name + ".jinja")).string()) + " --messages " +
                 quote(messages.string()) + (c["add_generation_prompt"].get<bool>() ? " --add-generation-prompt" : "") +
                 " --bos-token " + quote(tokens["bos_token"].get<std::string>()) + " --eos-token " +
                 quote(tokens["eos_token"].get<std::string>()) + " --now 2025-03-05T09:07:00");
    EXPECT_EQ(o.exit_code, 0) << o.err;
    EXPECT_EQ(o.out, testing::read_text(ct / "expected" / (name + "__" + case_name + ".txt"))) << name << "__" << case_name;
    std::filesystem::remove_all(dir);
    return;
  }
  ADD_FAILURE() << "no case " << case_name;
}

TEST(CliTemplate, RendersLikeTheReference) {
  HEARTH_REQUIRE_SHARED(shared);
  const auto ct = shared / "chat-templates";
  expect_pair(ct, "Qwen-Qwen2.5-7B-Instruct", "system-user");
  expect_pair(ct, "meta-llama-Llama-3.1-8B-Instruct", "tool-call-result");  // tools, and a dated system prompt
  expect_pair(ct, "Qwen-Qwen3-0.6B", "non-ascii");
}

TEST(CliTemplate, RaiseExceptionFailsWithTheTemplatesMessage) {
  HEARTH_REQUIRE_SHARED(shared);
  const auto ct = shared / "chat-templates";
  const auto dir = testing::make_temp_dir("hearth-cli-template");
  const auto messages = write_file(dir, "m.json", R"([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])");
  auto o = run("template render --template " + quote((ct / "google-gemma-2-2b-it.jinja").string()) + " --messages " +
               quote(messages.string()) + " --bos-token '<bos>' --eos-token '<eos>'");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_TRUE(o.out.empty());
  EXPECT_NE(o.err.find("System role not supported"), std::string::npos) << o.err;
  std::filesystem::remove_all(dir);
}

TEST(CliTemplate, FixedTimeAndToolsFile) {
  const auto dir = testing::make_temp_dir("hearth-cli-template");
  const auto tmpl = write_file(dir, "t.jinja", "{{ strftime_now('%Y-%m-%d %A') }}|{{ tools|length }}|{{ messages[0].content }}\n");
  const auto messages = write_file(dir, "m.json", R"([{"role": "user", "content": "hi"}])");
  const auto tools = write_file(dir, "tools.json", R"([{"type": "function", "function": {"name": "f"}}])");
  auto o = run("template render --template " + quote(tmpl.string()) + " --messages " + quote(messages.string()) +
               " --tools " + quote(tools.string()) + " --now 2025-03-05T09:07:00");
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "2025-03-05 Wednesday|1|hi");
  auto bad = run("template render --template " + quote(tmpl.string()) + " --messages " + quote(messages.string()) +
                 " --now yesterday");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--now"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(CliTemplate, ModelSuppliesTheTemplateAndTokens) {
  const auto dir = testing::make_temp_dir("hearth-cli-template");
  gguf::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_array_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_string("tokenizer.chat_template",
               "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}");
  const auto model = dir / "m.gguf";
  ASSERT_TRUE(w.write(model.string()).ok());
  const auto messages = write_file(dir, "m.json", R"({"messages": [{"role": "user", "content": "hi"}]})");
  auto o = run("template render --model " + quote(model.string()) + " --messages " + quote(messages.string()));
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "<s>[user] hi</s>");
  auto over = run("template render --model " + quote(model.string()) + " --messages " + quote(messages.string()) +
                  " --bos-token B --eos-token E");
  EXPECT_EQ(over.out, "B[user] hiE");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth
