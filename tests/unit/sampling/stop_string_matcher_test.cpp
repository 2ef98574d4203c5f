#include "hearth/sampling/stop_string_matcher.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace hearth::sampling {
namespace {

TEST(StopStringMatcher, StopAcrossPieceBoundaries) {
  StopStringMatcher m({"</s>"});
  auto s1 = m.push("Hello <");
  EXPECT_EQ(s1.text, "Hello ");  // "<" could start "</s>": held
  EXPECT_FALSE(s1.stopped);
  EXPECT_EQ(m.held(), "<");
  auto s2 = m.push("/");
  EXPECT_EQ(s2.text, "");
  EXPECT_EQ(m.held(), "</");
  auto s3 = m.push("s> and more");
  EXPECT_TRUE(s3.stopped);
  EXPECT_EQ(s3.text, "");
  EXPECT_EQ(s3.stop_index, 0u);
  EXPECT_EQ(s3.stop_offset, 6u);  // "Hello " is 6 bytes
  EXPECT_TRUE(m.stopped());
  // Later pieces are ignored; finish() has nothing left.
  auto s4 = m.push("ignored");
  EXPECT_TRUE(s4.stopped);
  EXPECT_EQ(s4.text, "");
  EXPECT_EQ(m.finish(), "");
  EXPECT_EQ(m.emitted(), 6u);
}

TEST(StopStringMatcher, HeldPrefixIsReleasedWhenItDoesNotMatch) {
  StopStringMatcher m({"</s>"});
  EXPECT_EQ(m.push("a <").text, "a ");
  EXPECT_EQ(m.push("b").text, "<b");
  EXPECT_EQ(m.push("</").text, "");
  EXPECT_EQ(m.push("x").text, "</x");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStringMatcher, StopInsideOnePiece) {
  StopStringMatcher m({"STOP"});
  auto s = m.push("abcSTOPdef");
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.text, "abc");
  EXPECT_EQ(s.stop_offset, 3u);
}

TEST(StopStringMatcher, EarliestStopWins) {
  // "hello world": "lo w" starts at 3, "world" at 6.
  StopStringMatcher m({"world", "lo w"});
  auto s = m.push("hello world");
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.text, "hel");
  EXPECT_EQ(s.stop_index, 1u);
}

TEST(StopStringMatcher, SelfOverlappingStop) {
  // Stop "abab". "ab" + "aab" = "abaab": no match; the longest suffix that starts "abab" is "ab",
  // so "aba" is emitted. Then "ab" completes "abab" at offset 3.
  StopStringMatcher m({"abab"});
  EXPECT_EQ(m.push("ab").text, "");
  EXPECT_EQ(m.push("aab").text, "aba");
  EXPECT_EQ(m.held(), "ab");
  auto s = m.push("ab");
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.text, "");
  EXPECT_EQ(s.stop_offset, 3u);
}

TEST(StopStringMatcher, LongestPrefixAcrossSeveralStops) {
  // Stops "xyz" and "yzw": after "axy", "xy" may start "xyz" (2 bytes) -> emit "a".
  StopStringMatcher m({"xyz", "yzw"});
  EXPECT_EQ(m.push("axy").text, "a");
  // "xyq": no stop prefix remains.
  EXPECT_EQ(m.push("q").text, "xyq");
}

TEST(StopStringMatcher, MultiByteStopSplitInsideCharacters) {
  // "世界" is E4 B8 96 E7 95 8C; "你好" is 6 bytes. Pieces split both characters.
  StopStringMatcher m({"世界"});
  EXPECT_EQ(m.push("你好").text, "你好");
  EXPECT_EQ(m.push("\xE4\xB8").text, "");
  EXPECT_EQ(m.push("\x96\xE7").text, "");
  EXPECT_EQ(m.held(), "\xE4\xB8\x96\xE7");
  auto s = m.push("\x95\x8C!");
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.text, "");
  EXPECT_EQ(s.stop_offset, 6u);
}

TEST(StopStringMatcher, MultiByteTextSharingALeadByteWithTheStop) {
  // "世" (E4 B8 96) then "丁" (E4 B8 81): the first is a stop prefix, then it is not.
  StopStringMatcher m({"世界"});
  EXPECT_EQ(m.push("世").text, "");
  EXPECT_EQ(m.push("丁").text, "世丁");
}

TEST(StopStringMatcher, HoldsIncompleteUtf8) {
  StopStringMatcher m({});
  // "é" = C3 A9 split in two.
  EXPECT_EQ(m.push("caf\xC3").text, "caf");
  EXPECT_EQ(m.push("\xA9 ok").text, "\xC3\xA9 ok");
  // "😀" = F0 9F 98 80 split 1 + 1 + 2.
  EXPECT_EQ(m.push("\xF0").text, "");
  EXPECT_EQ(m.push("\x9F").text, "");
  EXPECT_EQ(m.push("\x98\x80").text, "\xF0\x9F\x98\x80");
  // A stray continuation byte or invalid lead is not held (it can never become valid).
  EXPECT_EQ(m.push("x\x80").text, "x\x80");
  EXPECT_EQ(m.push("\xFF").text, "\xFF");
}

TEST(StopStringMatcher, Utf8HoldCanBeTurnedOff) {
  StopStringMatcher m({}, /*hold_incomplete_utf8=*/false);
  EXPECT_EQ(m.push("caf\xC3").text, "caf\xC3");
}

TEST(StopStringMatcher, FinishReleasesHeldText) {
  StopStringMatcher m({"###"});
  EXPECT_EQ(m.push("x#").text, "x");
  EXPECT_EQ(m.push("#").text, "");
  EXPECT_EQ(m.finish(), "##");
  EXPECT_EQ(m.emitted(), 3u);
  EXPECT_FALSE(m.stopped());
}

TEST(StopStringMatcher, EmptyStopsAreIgnoredAndResetStartsOver) {
  StopStringMatcher m({"", "end"});
  EXPECT_EQ(m.push("abc").text, "abc");
  auto s = m.push("the end");
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.stop_index, 1u);
  EXPECT_EQ(s.text, "the ");
  m.reset();
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.emitted(), 0u);
  EXPECT_EQ(m.push("again").text, "again");
}

TEST(StopStringMatcher, StreamedOutputEqualsCutOfWholeText) {
  // Byte-by-byte streaming must give the same text as cutting the whole string at the stop.
  const std::string text = "Q: what?\nA: it is 日本語 text\nQ: next";
  StopStringMatcher m({"\nQ:"});
  std::string out;
  StopStringMatcher::Step last;
  for (char ch : text) {
    last = m.push(std::string_view(&ch, 1));
    out += last.text;
    if (last.stopped) break;
  }
  ASSERT_TRUE(last.stopped);
  const size_t cut = text.find("\nQ:");
  EXPECT_EQ(out, text.substr(0, cut));
  EXPECT_EQ(last.stop_offset, cut);
}

// The automaton against the definition: after each piece, the earliest (then lowest-index)
// occurrence of any stop in all the text so far ends the output there.
TEST(StopStringMatcher, MatchesBruteForceOnRandomText) {
  std::mt19937 rng(12);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::string> stops(static_cast<size_t>(1 + pick(4)));
    for (auto& st : stops) {
      for (int i = 0, n = pick(5); i < n; ++i) st += static_cast<char>('a' + pick(3));
    }
    StopStringMatcher m(stops, /*hold_incomplete_utf8=*/false);
    std::string text, out;
    bool stopped = false;
    for (int k = 0; k < 12 && !stopped; ++k) {
      std::string piece;
      for (int i = 0, n = pick(4); i < n; ++i) piece += static_cast<char>('a' + pick(3));
      text += piece;
      size_t best = std::string::npos, best_index = 0;
      for (size_t i = 0; i < stops.size(); ++i) {
        if (stops[i].empty()) continue;
        const size_t pos = text.find(stops[i]);
        if (pos < best) {
          best = pos;
          best_index = i;
        }
      }
      auto step = m.push(piece);
      out += step.text;
      ASSERT_EQ(step.stopped, best != std::string::npos) << round;
      if (step.stopped) {
        stopped = true;
        EXPECT_EQ(out, text.substr(0, best)) << round;
        EXPECT_EQ(step.stop_offset, best) << round;
        EXPECT_EQ(step.stop_index, best_index) << round;
      }
    }
    if (!stopped) {
      EXPECT_EQ(out + m.finish(), text) << round;
    }
  }
}

// A long self-similar stop over a long run of its prefix: each push costs its own bytes, and
// the held-back text never exceeds the stop's length minus one.
TEST(StopStringMatcher, LongStopOverLongRunHoldsAtMostItsLength) {
  const std::string stop = std::string(255, 'a') + "b";
  StopStringMatcher m({stop, "ab" + std::string(10, 'c')});
  size_t emitted = 0;
  for (int i = 0; i < 20000; ++i) {
    auto step = m.push("a");
    emitted += step.text.size();
    ASSERT_LE(m.held().size(), 255u);
  }
  EXPECT_EQ(emitted, 20000u - 255u);
  auto s = m.push("b");
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.stop_index, 0u);
  EXPECT_EQ(s.stop_offset, 20000u - 255u);
}

}  // namespace
}  // namespace hearth::sampling
