// Every pair of ../shared/chat-templates: 45 real chat templates x 12 conversations, rendered
// as transformers renders them (expected/NAME__CASE.txt), or failing where jinja2 fails
// (expected/NAME__CASE.error; a raise_exception message must match verbatim).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hearth/jinja/json_value.h"
#include "hearth/jinja/template.h"
#include "shared_data.h"

namespace hearth::jinja {
namespace {

// Where two texts first differ, with some context, for a readable failure.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  const size_t from = i > 60 ? i - 60 : 0;
  return "at byte " + std::to_string(i) + "\n  want: ..." + want.substr(from, 160) + "\n  got:  ..." + got.substr(from, 160);
}

TEST(JinjaChatTemplates, AllPairsMatchTheReference) {
  HEARTH_REQUIRE_SHARED(shared);
  const auto dir = shared / "chat-templates";
  ASSERT_TRUE(std::filesystem::exists(dir / "cases.json")) << dir;
  const auto templates = nlohmann::ordered_json::parse(testing::read_text(dir / "templates.json"));
  const auto cases = nlohmann::ordered_json::parse(testing::read_text(dir / "cases.json"));
  std::tm now{};
  now.tm_year = 2025 - 1900;
  now.tm_mon = 2;
  now.tm_mday = 5;
  now.tm_hour = 9;
  now.tm_min = 7;
  now.tm_wday = 3;
  now.tm_yday = 63;

  int rendered = 0, raised = 0, matched = 0, total = 0;
  for (auto it = templates.begin(); it != templates.end(); ++it) {
    const std::string name = it.key();
    auto tmpl = Template::parse(testing::read_text(dir / (name + ".jinja")));
    ASSERT_TRUE(tmpl.ok()) << name << ": " << tmpl.status().to_string();
    for (const auto& c : cases) {
      const std::string case_name = c["name"].get<std::string>();
      const std::string pair = name + "__" + case_name;
      ++total;
      Context ctx;
      ctx.messages = value_from_json(c["messages"]);
      ctx.tools = c.contains("tools") ? value_from_json(c["tools"]) : Value::none();
      ctx.add_generation_prompt = c["add_generation_prompt"].get<bool>();
      ctx.bos_token = it.value()["bos_token"].get<std::string>();
      ctx.eos_token = it.value()["eos_token"].get<std::string>();
      ctx.now = now;
      ctx.limits.max_steps = 100'000;  // real templates need a few thousand: the default (5M) is far above
      auto out = tmpl->render(ctx);
      const auto txt = dir / "expected" / (pair + ".txt");
      if (std::filesystem::exists(txt)) {
        ++rendered;
        const std::string want = testing::read_text(txt);
        if (!out.ok()) {
          ADD_FAILURE() << pair << ": expected a render, got " << out.status().to_string();
        } else if (*out != want) {
          ADD_FAILURE() << pair << ": differs " << first_difference(want, *out);
        } else {
          ++matched;
        }
        continue;
      }
      ++raised;
      std::string want = testing::read_text(dir / "expected" / (pair + ".error"));
      if (!want.empty() && want.back() == '\n') want.pop_back();
      if (out.ok()) {
        ADD_FAILURE() << pair << ": expected an error (" << want << "), got a render";
        continue;
      }
      // A raise_exception message is the template's own and must match verbatim; other errors
      // ("TypeError: ...") only have to fail.
      const bool python_error = want.find("Error: ") != std::string::npos;
      if (!python_error) {
        if (out.status().code() != ErrorCode::kFailedPrecondition || error_message_text(out.status()) != want) {
          ADD_FAILURE() << pair << ": expected raise_exception '" << want << "', got " << out.status().to_string();
          continue;
        }
      }
      ++matched;
    }
  }
  EXPECT_EQ(total, 540);
  EXPECT_EQ(rendered, 493);
  EXPECT_EQ(raised, 47);
  EXPECT_EQ(matched, 540) << matched << " of " << total << " pairs match";
}

}  // namespace
}  // namespace hearth::jinja
