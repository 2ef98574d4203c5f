// `hearth template render --template FILE|--model MODEL --messages FILE.json [--tools FILE.json]
// [--add-generation-prompt] [--bos-token T] [--eos-token T] [--now ISO-TIME]`: renders a chat
// template with hearth's Jinja interpreter and prints the prompt (no newline added). With
// --model the template and the BOS/EOS texts come from the GGUF's tokenizer metadata; the
// flags override the tokens. A template error (e.g. its raise_exception) exits 1 with the
// template's message on stderr.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "command.h"
#include "hearth/gguf/gguf.h"
#include "hearth/jinja/json_value.h"
#include "hearth/jinja/template.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct TemplateOptions {
  std::string template_file;
  std::string model;
  std::string messages_file;
  std::string tools_file;
  bool add_generation_prompt = false;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::string now;
};

Result<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(ErrorCode::kNotFound, "{}: cannot open", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "2025-03-05T09:07:00" (seconds optional; a space may replace the T).
Result<std::tm> parse_iso_time(const std::string& s) {
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  char sep = 0;
  const int n = std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &y, &mo, &d, &sep, &h, &mi, &sec);
  if (n < 6 || (sep != 'T' && sep != ' ') || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
    return make_error(ErrorCode::kInvalidArgument, "--now '{}': expected an ISO time like 2025-03-05T09:07:00", s);
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  std::tm copy = tm;
  timegm(&copy);  // fills in the weekday and day of the year
  tm.tm_wday = copy.tm_wday;
  tm.tm_yday = copy.tm_yday;
  return tm;
}

std::string token_text(const gguf::GgufFile& f, std::string_view id_key) {
  auto id = f.get_u32(id_key);
  auto tokens = f.get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING);
  if (!id.ok() || !tokens.ok() || *id >= (*tokens)->strings.size()) return "";
  return std::string((*tokens)->strings[*id]);
}

Status run(const TemplateOptions& o) {
  jinja::Context ctx;
  std::string source;
  if (!o.template_file.empty()) {
    HEARTH_ASSIGN_OR_RETURN(source, read_file(o.template_file));
  } else if (!o.model.empty()) {
    HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg model, resolve_model_arg(o.model, "template"));
    HEARTH_ASSIGN_OR_RETURN(auto file, open_gguf(model));
    auto tmpl = file->file.get_string("tokenizer.chat_template");
    if (!tmpl.ok()) {
      return make_error(ErrorCode::kNotFound, "{}: no tokenizer.chat_template in the model; use --template FILE",
                        model.display);
    }
    source = std::string(*tmpl);
    ctx.bos_token = token_text(file->file, "tokenizer.ggml.bos_token_id");
    ctx.eos_token = token_text(file->file, "tokenizer.ggml.eos_token_id");
  } else {
    return make_error(ErrorCode::kInvalidArgument, "give --template FILE or --model MODEL");
  }
  if (o.bos_token) ctx.bos_token = *o.bos_token;
  if (o.eos_token) ctx.eos_token = *o.eos_token;
  ctx.add_generation_prompt = o.add_generation_prompt;
  if (!o.now.empty()) {
    HEARTH_ASSIGN_OR_RETURN(std::tm now, parse_iso_time(o.now));
    ctx.now = now;
  }

  HEARTH_ASSIGN_OR_RETURN(std::string messages_text, read_file(o.messages_file));
  auto messages = jinja::parse_json_value(messages_text);
  if (!messages.ok()) return messages.status().with_context(o.messages_file);
  if (messages->is_dict()) {
    // {"messages": [...], "tools": [...]}
    const jinja::Value* m = messages->entries().find("messages");
    if (!m || !m->is_list()) return make_error(ErrorCode::kInvalidArgument, "{}: no \"messages\" list", o.messages_file);
    if (const jinja::Value* t = messages->entries().find("tools")) ctx.tools = *t;
    ctx.messages = *m;
  } else if (messages->is_list()) {
    ctx.messages = *messages;
  } else {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected a list of messages or an object with \"messages\"",
                      o.messages_file);
  }
  if (!o.tools_file.empty()) {
    HEARTH_ASSIGN_OR_RETURN(std::string tools_text, read_file(o.tools_file));
    auto tools = jinja::parse_json_value(tools_text);
    if (!tools.ok()) return tools.status().with_context(o.tools_file);
    ctx.tools = *tools;
  }

  auto tmpl = jinja::Template::parse(source);
  if (!tmpl.ok()) return tmpl.status().with_context("template");
  auto out = tmpl->render(ctx);
  if (!out.ok()) return out.status().with_context("template");
  std::fwrite(out->data(), 1, out->size(), stdout);
  std::fflush(stdout);
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<TemplateOptions>();
  auto* tmpl = app.add_subcommand("template", "chat templates (Jinja) as models ship them");
  tmpl->require_subcommand(1);
  auto* render = tmpl->add_subcommand("render", "render a chat template for a conversation and print the prompt");
  auto* src = render->add_option("--template", o->template_file, "a Jinja chat template file");
  auto* model = render->add_option("--model", o->model, "a GGUF file or store reference: its tokenizer.chat_template");
  src->excludes(model);
  render->add_option("--messages", o->messages_file, "JSON: a list of messages, or {\"messages\": [...], \"tools\": [...]}")
      ->required();
  render->add_option("--tools", o->tools_file, "JSON: the list of tools (default: none)");
  render->add_flag("--add-generation-prompt", o->add_generation_prompt, "end with the assistant turn's opening");
  render->add_option("--bos-token", o->bos_token, "the BOS token text (default: the model's, or empty)");
  render->add_option("--eos-token", o->eos_token, "the EOS token text (default: the model's, or empty)");
  render->add_option("--now", o->now, "the time strftime_now formats, e.g. 2025-03-05T09:07:00 (default: now)");
  render->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(160, setup);

}  // namespace
}  // namespace hearth::cli
