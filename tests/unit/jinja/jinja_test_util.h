// Rendering helpers shared by the jinja unit tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "hearth/jinja/json_value.h"
#include "hearth/jinja/template.h"

namespace hearth::jinja::test {

// Renders `src` with messages/tools parsed from JSON text; returns the text, or
// "ERROR(<code>): <message>" so that expectations can name errors too.
inline std::string render(std::string_view src, std::string_view messages_json = "[]", const Context* base = nullptr) {
  auto t = Template::parse(src);
  if (!t.ok()) return "ERROR(" + std::string(error_code_name(t.status().code())) + "): " + t.status().message();
  Context ctx = base ? *base : Context{};
  auto m = parse_json_value(messages_json);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (m.ok()) ctx.messages = *m;
  auto out = t->render(ctx);
  if (!out.ok()) return "ERROR(" + std::string(error_code_name(out.status().code())) + "): " + out.status().message();
  return *out;
}

}  // namespace hearth::jinja::test
