// The interpreter's semantics, one feature per test: Python printing, operators, filters, tests,
// methods, whitespace control, loops, scoping, macros, and errors that name the line.
#include <gtest/gtest.h>

#include "jinja_test_util.h"

namespace hearth::jinja {
namespace {

using test::render;

TEST(JinjaExpressions, PrintsValuesAsPythonStr) {
  EXPECT_EQ(render("{{ none }}|{{ true }}|{{ false }}|{{ 3 }}|{{ 92.5 }}|{{ 1.0 }}|{{ 1e20 }}|{{ 0.00001 }}"),
            "None|True|False|3|92.5|1.0|1e+20|1e-05");
  EXPECT_EQ(render("{{ {'a': 1, 'b': [1, 'x', none, true]} }}"), "{'a': 1, 'b': [1, 'x', None, True]}");
  EXPECT_EQ(render("{{ [\"it's\"] }}|{{ ('a',) }}|{{ (1, 2) }}"), "[\"it's\"]|('a',)|(1, 2)");
  EXPECT_EQ(render("{{ undefined_name }}|{{ {4096: 512} }}"), "|{4096: 512}");
}

TEST(JinjaExpressions, Arithmetic) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2.5 }}"),
            "3 -4 1 2 3.5 1024 3.5");
  EXPECT_EQ(render("{{ 'ab' ~ 1 ~ none }}|{{ 'ab' + 'cd' }}|{{ [1] + [2] }}|{{ 'x' * 3 }}|{{ -(3) }}"),
            "ab1None|abcd|[1, 2]|xxx|-3");
  EXPECT_EQ(render("{{ 1 if false }}|{{ 'y' if 1 > 0 else 'n' }}|{{ 0 or 'd' }}|{{ 'a' and 'b' }}"), "|y|d|b");
}

TEST(JinjaExpressions, ComparisonsAndMembership) {
  EXPECT_EQ(render("{{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 1 < 2 < 3 }} {{ 'b' > 'a' }} {{ true == 1 }}"),
            "True True True True True");
  EXPECT_EQ(render("{{ 'ell' in 'hello' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }}"),
            "True True True True");
  EXPECT_EQ(render("{{ 'x' in undefined_name }}"), "False");
}

TEST(JinjaExpressions, SubscriptsAndSlices) {
  EXPECT_EQ(render("{{ 'hello'[1:] }}|{{ 'hello'[::-1] }}|{{ [1,2,3,4][-2:] }}|{{ [1,2,3][:-1] }}|{{ 'héllo'[1] }}"),
            "ello|olleh|[3, 4]|[1, 2]|é");
  EXPECT_EQ(render("{{ [1,2,3,4,5][::2] }}|{{ [1,2,3][5] }}|{{ {'a': {'b': 2}}.a.b }}|{{ {'a': 1}['a'] }}"),
            "[1, 3, 5]||2|1");
}

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(render("{{ '  x  '|trim }}|{{ 'ab'|upper }}|{{ 'AB'|lower }}|{{ 'hello world'|title }}|{{ 'hi there'|capitalize }}"),
            "x|AB|ab|Hello World|Hi there");
  EXPECT_EQ(render("{{ \"it's a-b (c)\"|title }}|{{ \"it's\".title() }}"), "It's A-B (C)|It'S");
  EXPECT_EQ(render("{{ 'a-b-c'|replace('-', '+') }}|{{ 5|string ~ '!' }}|{{ '42'|int + 1 }}|{{ 'a\nb'|indent(2) }}"),
            "a+b+c|5!|43|a\n  b");
  EXPECT_EQ(render("{{ 'x'|indent(2, first=true) }}|{{ [3, 1, 2]|join(', ') }}|{{ 'abc'|length }}|{{ 'héllo'|length }}"),
            "  x|3, 1, 2|3|5");
}

TEST(JinjaFilters, Sequences) {
  EXPECT_EQ(render("{{ [3, 1, 2]|sort }}|{{ ['b', 'A', 'c']|sort }}|{{ [1, 2, 2, 1]|unique|list }}|{{ [1, 2]|first }}|{{ [1, 2]|last }}"),
            "[1, 2, 3]|['A', 'b', 'c']|[1, 2]|1|2");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|dictsort }}|{{ {'a': 1}|items|list }}|{{ 'ab'|list }}|{{ [4, 2, 9]|min }}"),
            "[('a', 2), ('b', 1)]|[('a', 1)]|['a', 'b']|2");
  const char* data = R"([{"role": "user", "n": 1}, {"role": "tool", "n": 2}, {"role": "user", "n": 3}])";
  EXPECT_EQ(render("{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='n')|list }}", data), "[1, 3]");
  EXPECT_EQ(render("{{ messages|rejectattr('role', 'equalto', 'user')|list|length }}", data), "1");
  EXPECT_EQ(render("{{ messages|map(attribute='role')|unique|join(',') }}", data), "user,tool");
  EXPECT_EQ(render("{{ ['a', 'B']|map('upper')|list }}|{{ [0, 1, 2]|select|list }}|{{ [0, 1]|reject|list }}"),
            "['A', 'B']|[1, 2]|[0]");
  EXPECT_EQ(render("{{ [{'t': 'b'}, {'t': 'a'}]|sort(attribute='t') }}"), "[{'t': 'a'}, {'t': 'b'}]");
  // Attribute paths are dotted, with digits as indices.
  EXPECT_EQ(render("{{ messages|map(attribute='f.name')|join(',') }}|{{ messages|selectattr('f.l.0')|list|length }}",
                   R"([{"f": {"name": "a", "l": [1]}}, {"f": {"name": "b", "l": [0]}}])"),
            "a,b|1");
  EXPECT_EQ(render("{{ [{'x': 1}, {}]|map(attribute='x', default=0)|list }}"), "[1, 0]");
}

TEST(JinjaFilters, DefaultAndSafe) {
  EXPECT_EQ(render("{{ nope|default('d') }}|{{ ''|default('d') }}|{{ ''|default('d', true) }}|{{ nope|length }}"),
            "d||d|0");
  // MarkupSafe: Markup + str escapes the str; ~ does not.
  EXPECT_EQ(render("{{ '<a>'|safe + '<b>' }}|{{ '<a>' ~ '<b>'|safe }}|{{ \"'\"|e }}"), "<a>&lt;b&gt;|<a><b>|&#39;");
}

TEST(JinjaFilters, ToJsonIsPythonJsonDumps) {
  const char* data = R"([{"name": "Zoë <&> 'q'", "n": 100, "x": 92.5, "ok": true, "z": null, "l": [], "d": {}}])";
  EXPECT_EQ(render("{{ messages[0]|tojson }}", data),
            R"({"name": "Zoë <&> 'q'", "n": 100, "x": 92.5, "ok": true, "z": null, "l": [], "d": {}})");
  EXPECT_EQ(render("{{ {'a': [1, 2]}|tojson(indent=2) }}"), "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
  EXPECT_EQ(render("{{ 'é\n\"'|tojson(ensure_ascii=true) }}"), "\"\\u00e9\\n\\\"\"");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ {1: 2}|tojson }}"), R"({"a": 2, "b": 1}|{"1": 2})");
  // jinja2's map yields a generator, which json.dumps rejects.
  EXPECT_EQ(render("{{ [1]|map('string')|tojson }}").substr(0, 23), "ERROR(invalid_argument)");
}

TEST(JinjaTests, TypeTests) {
  EXPECT_EQ(render("{{ 'a' is string }} {{ {} is mapping }} {{ {} is sequence }} {{ none is iterable }} "
                   "{{ true is number }} {{ x is defined }} {{ x is undefined }} {{ none is none }} {{ 3 is odd }}"),
            "True True True False True False True True True");
  EXPECT_EQ(render("{{ 2 is divisibleby 2 }} {{ 'a' is not string }} {{ false is false }} {{ 1 is true }}"),
            "True False True False");
}

TEST(JinjaMethods, StringAndDictMethods) {
  EXPECT_EQ(render("{{ ' a b '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}"),
            "a b|a|['a', 'b', '', 'c']|['a', 'b']");
  EXPECT_EQ(render("{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}"),
            "['a', 'b c']|True|True");
  EXPECT_EQ(render("{{ 'aXa'.replace('a', 'b') }}|{{ '..x'.lstrip('.') }}|{{ 'x\n'.rstrip() }}|{{ 'Ab'.lower() }}"),
            "bXb|x|x|ab");
  EXPECT_EQ(render("{% set d = {'a': 1} %}{{ d.get('a') }}|{{ d.get('b', 2) }}|{{ d.get('b') }}|{{ d.items()|list }}|"
                   "{{ d.keys()|list }}|{{ d.values()|list }}"),
            "1|2|None|[('a', 1)]|['a']|[1]");
}

TEST(JinjaMethods, WhitespaceIsPythonsIncludingUnicode) {
  // U+3000 (ideographic space), U+00A0 (no-break space) and U+2029 count as whitespace in Python.
  EXPECT_EQ(render("[{{ '\u3000 x\u00a0'.strip() }}]|[{{ '\u2029y'|trim }}]|{{ 'a\u3000b c'.split() }}"),
            "[x]|[y]|['a', 'b', 'c']");
  // Other non-ASCII characters are not whitespace.
  EXPECT_EQ(render("[{{ 'é '.strip() }}]|[{{ ' 中'.strip() }}]"), "[é]|[中]");
}

TEST(JinjaMethods, StringFormatting) {
  EXPECT_EQ(render("{{ '%s has %d items (%.2f%%)' % ('cart', 3, 12.5) }}|{{ '%05d|%-4s|%x' % (42, 'ab', 255) }}"),
            "cart has 3 items (12.50%)|00042|ab  |ff");
  EXPECT_EQ(render("{{ '%(a)s-%(b)r' % {'a': 1, 'b': 'x'} }}|{{ '%s' % [1] }}|{{ '%s and %s'|format('a', 'b') }}"),
            "1-'x'|[1]|a and b");
  EXPECT_EQ(render("{{ '{} {}'.format('a', 1) }}|{{ '{1}{0}'.format('a', 'b') }}|{{ '{x:>4}|{y:.1f}'.format(x='r', y=2.25) }}"),
            "a 1|ba|   r|2.2");
  EXPECT_EQ(render("{{ '{{}}{:03d}'.format(7) }}"), "{}007");
  EXPECT_NE(render("{{ '%s %s' % ('a',) }}").find("not enough arguments"), std::string::npos);
  EXPECT_NE(render("{{ '{'.format(1) }}").find("ValueError"), std::string::npos);
}

TEST(JinjaWhitespace, RawBlocks) {
  EXPECT_EQ(render("a{% raw %}{{ not evaluated }}{% endraw %}b"), "a{{ not evaluated }}b");
  EXPECT_EQ(render("a\n  {% raw -%}\n  x  \n{%- endraw %}\nb"), "a\nxb");
  EXPECT_NE(render("{% raw %}x").find("unterminated '{% raw %}'"), std::string::npos);
}

TEST(JinjaMethods, MutationIsRefusedLikeTheSandbox) {
  EXPECT_EQ(render("{% set l = [] %}{{ l.append(1) }}").substr(0, 49),
            "ERROR(invalid_argument): line 1: SecurityError: a");
  EXPECT_NE(render("{% set d = {} %}{{ d.update({'a': 1}) }}").find("SecurityError"), std::string::npos);
}

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
  // trim_blocks drops the newline after %}; lstrip_blocks drops the indentation before {%.
  EXPECT_EQ(render("a\n  {% if true %}\n  b\n  {% endif %}\nc"), "a\n  b\nc");
  EXPECT_EQ(render("a  {{- ' b ' -}}  c"), "a b c");
  EXPECT_EQ(render("a\n{%- if true -%}\n  b  \n{%- endif %}"), "ab");
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(render("a\n  {# c #}\nb"), "a\nb");
  // {{ }} is not lstripped, and it does not eat the newline after it.
  EXPECT_EQ(render("  {{ 'x' }}\ny"), "  x\ny");
  // Exactly one trailing newline of the source is dropped.
  EXPECT_EQ(render("x\n\n"), "x\n");
}

TEST(JinjaStatements, LoopsAndLoopVariables) {
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
                   "{{ loop.length }}{{ loop.revindex }};{% endfor %}"),
            "10TrueFalse33;21FalseFalse32;32FalseTrue31;");
  EXPECT_EQ(render("{% for x in [1, 2] %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}"), "-2;1-;");
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] if x is odd %}{{ x }}{{ loop.length }}{% endfor %}"), "1232");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}"
                   "{% endif %}{{ x }}{% endfor %}"),
            "13");
  EXPECT_EQ(render("{% for x in range(3) %}{{ x }}{% endfor %}{% for c in 'ab' %}{{ c }}{% endfor %}"), "012ab");
}

TEST(JinjaStatements, ScopingAndNamespace) {
  // set inside a loop does not leak out, nor carry over to the next iteration; a namespace does.
  EXPECT_EQ(render("{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{% endfor %}{{ x }}"), "000");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in [1, 2] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
            "3");
  EXPECT_EQ(render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");
  EXPECT_EQ(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set t %}x{{ 1 + 1 }}{% endset %}[{{ t }}]"), "[x2]");
  EXPECT_EQ(render("{% generation %}g{% endgeneration %}"), "g");
  EXPECT_EQ(render("{% filter upper %}abc{% endfilter %}"), "ABC");
}

TEST(JinjaStatements, Macros) {
  EXPECT_EQ(render("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}|{{ m(1, 2) }}|{{ m(b=3, a=4) }}"),
            "1B|12|43");
  // A macro sees top-level variables but not the caller's loop variables.
  EXPECT_EQ(render("{% set top = 't' %}{% macro m() %}{{ top }}{{ i }}{% endmacro %}{% for i in [1] %}{{ m() }}{% endfor %}"),
            "t");
  EXPECT_EQ(render("{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}in{% endcall %}"), "<in>");
}

TEST(JinjaStatements, GlobalsAndContext) {
  Context ctx;
  ctx.bos_token = "<s>";
  ctx.add_generation_prompt = true;
  std::tm now{};
  now.tm_year = 125;
  now.tm_mon = 2;
  now.tm_mday = 5;
  now.tm_wday = 3;
  ctx.now = now;
  EXPECT_EQ(render("{{ bos_token }}{{ add_generation_prompt }}{{ tools }}{{ strftime_now('%d %B %Y, %A') }}", "[]", &ctx),
            "<s>TrueNone05 March 2025, Wednesday");
  EXPECT_EQ(render("{{ messages[0].content }}", R"([{"role": "user", "content": "hi"}])"), "hi");
}

TEST(JinjaErrors, RaiseExceptionKeepsTheMessage) {
  EXPECT_EQ(render("a\n{{ raise_exception('System role not supported') }}"),
            "ERROR(failed_precondition): line 2: System role not supported");
  auto t = Template::parse("{{ raise_exception('bad: x') }}");
  ASSERT_TRUE(t.ok());
  auto out = t->render(Context{});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(error_message_text(out.status()), "bad: x");
}

// A catalogue of bad templates, each with the error it must give: the code and the message,
// which names the template line.
struct ErrorCase {
  const char* source;
  const char* error;  // "ERROR(<code>): line N: <message>"
};

const ErrorCase kErrorCases[] = {
    {"x\n\n{% if %}", "ERROR(invalid_argument): line 3: unexpected '%}' in an expression"},
    {"{% for x in y %}", "ERROR(invalid_argument): line 1: unexpected end of template: missing {% endfor %}"},
    {"{% if x %}\n{% endfor %}", "ERROR(invalid_argument): line 2: unknown statement 'endfor'"},
    {"{{ x", "ERROR(invalid_argument): line 1: unterminated '{{': no matching '}}'"},
    {"a\n{# open", "ERROR(invalid_argument): line 2: unterminated comment: '{#' without '#}'"},
    {"{{ 'unterminated }}", "ERROR(invalid_argument): line 1: unterminated string literal"},
    {"{{ a ? b }}", "ERROR(invalid_argument): line 1: unexpected character '?' in a tag"},
    {"{% break %}", "ERROR(invalid_argument): line 1: 'break' outside of a loop"},
    {"{% for x in y recursive %}{% endfor %}", "ERROR(invalid_argument): line 1: recursive loops are not supported"},
    {"{% frobnicate %}", "ERROR(invalid_argument): line 1: unknown statement 'frobnicate'"},
    {"a\n{{ 'x' + none }}", "ERROR(invalid_argument): line 2: TypeError: can only concatenate str (not \"NoneType\") to str"},
    {"{{ 'x' + {} }}", "ERROR(invalid_argument): line 1: TypeError: can only concatenate str (not \"dict\") to str"},
    {"\n{{ nope.attr }}", "ERROR(invalid_argument): line 2: UndefinedError: 'attr' of an undefined value"},
    {"{{ nope + 1 }}", "ERROR(invalid_argument): line 1: UndefinedError: operand of '+' is undefined"},
    {"{% for x in none %}{% endfor %}", "ERROR(invalid_argument): line 1: TypeError: 'NoneType' object is not iterable"},
    {"{{ 'a' in none }}", "ERROR(invalid_argument): line 1: TypeError: argument of type 'NoneType' is not iterable"},
    {"{{ none|length }}", "ERROR(invalid_argument): line 1: TypeError: object of type 'NoneType' has no len()"},
    {"{{ 'a' < 1 }}", "ERROR(invalid_argument): line 1: TypeError: '<' not supported between instances of 'str' and 'int'"},
    {"{{ x|from_json }}", "ERROR(invalid_argument): line 1: TemplateRuntimeError: no filter named 'from_json'"},
    {"{{ x is frob }}", "ERROR(invalid_argument): line 1: TemplateRuntimeError: no test named 'frob'"},
    {"{{ none.split(',') }}", "ERROR(invalid_argument): line 1: UndefinedError: 'NoneType' object has no attribute 'split'"},
    {"{{ [1]|map('string')|tojson }}",
     "ERROR(invalid_argument): line 1: TypeError: Object of type generator is not JSON serializable"},
    {"{% set l = [] %}\n{{ l.append(1) }}",
     "ERROR(invalid_argument): line 2: SecurityError: access to attribute 'append' of 'list' object is unsafe"},
    {"{{ 1 // 0 }}", "ERROR(invalid_argument): line 1: ZeroDivisionError: integer division or modulo by zero"},
    {"{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}",
     "ERROR(invalid_argument): line 1: TypeError: macro 'm' takes not more than 1 argument(s)"},
    {"{% set a, b = [1] %}", "ERROR(invalid_argument): line 1: ValueError: cannot unpack 1 values into 2 names"},
    {"{% set x = 1 %}{% set x.y = 2 %}", "ERROR(invalid_argument): line 1: cannot assign attribute 'y' on 'x': not a namespace"},
    {"\n\n{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}",
     "ERROR(failed_precondition): line 3: Conversation roles must alternate user/assistant/user/assistant/..."},
};

TEST(JinjaErrors, Catalogue) {
  for (const ErrorCase& c : kErrorCases) EXPECT_EQ(render(c.source), c.error) << c.source;
}

TEST(JinjaErrors, NoFileAccess) {
  for (const char* s : {"{% include 'x' %}", "{% import 'x' as y %}", "{% extends 'x' %}", "{% from 'x' import y %}"}) {
    EXPECT_NE(render(s).find("not supported: templates cannot load other templates"), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace hearth::jinja
