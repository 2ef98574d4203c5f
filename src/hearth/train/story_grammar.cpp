#include "hearth/train/story_grammar.h"

#include <array>
#include <string_view>
#include <vector>

#include "hearth/train/llama_params.h"

namespace hearth::train {
namespace {

using Words = std::vector<std::string_view>;

const Words kAnimals = {"dog",   "cat",  "bird", "fox", "rabbit", "bear",
                        "mouse", "duck", "frog", "owl", "horse",  "turtle"};
const Words kAdjectives = {"little", "big",  "brave",   "sleepy", "happy", "shy",
                           "clever", "kind", "curious", "tiny",   "old",   "young"};
const Words kNames = {"Max",  "Lily", "Tom",  "Mia",  "Ben",  "Sue",  "Sam",
                      "Anna", "Leo",  "Rosa", "Finn", "Ella", "Jack", "Nora"};
const Words kHomes = {"in a small house near the park",
                      "under a big tree in the forest",
                      "by the river",
                      "on a farm with many friends",
                      "in a cozy hole in the garden",
                      "at the top of a green hill",
                      "next to a quiet lake",
                      "in a busy town"};
const Words kPlaces = {"the park", "the forest", "the river", "the garden",
                       "the hill", "the lake",   "the beach", "the town"};
const Words kThings = {"a red ball",    "a shiny stone", "a lost key", "a big apple",     "a blue kite",
                       "a little boat", "a warm hat",    "an old map", "a yellow flower", "a wooden box"};
const Words kFeelings = {"happy", "sad", "scared", "excited", "tired", "hungry", "surprised", "proud"};
const Words kFriends = {"a friendly cat", "a wise owl",    "a small bird",    "a kind girl",
                        "a funny frog",   "an old turtle", "a playful puppy", "a gentle horse"};
const Words kRequests = {"Tell me a story about a", "Can you tell me a story about a", "Write a short story about a",
                         "Please tell me a story about a", "I want a story about a"};
const Words kWeather = {"The sun was warm.",           "It was a rainy day.",     "The wind was cold.",
                        "The sky was blue and clear.", "It was a quiet morning.", "Snow covered the ground."};
const Words kEndings = {"From that day on, {N} and the friend played together every day.",
                        "{N} went home and slept well that night.", "{N} learned that it is good to help others.",
                        "Everyone was happy, and {N} smiled.", "{N} never forgot that day."};

struct Gen {
  SplitMix64 rng;
  std::string_view pick(const Words& w) { return w[rng.next() % w.size()]; }
};

// Replaces {N} by the name.
std::string fill(std::string_view s, std::string_view name) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.substr(i, 3) == "{N}") {
      out += name;
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string story(Gen& g) {
  const std::string_view adj = g.pick(kAdjectives), animal = g.pick(kAnimals), name = g.pick(kNames);
  const std::string_view place = g.pick(kPlaces), thing = g.pick(kThings), friend_ = g.pick(kFriends);
  const std::string_view feeling = g.pick(kFeelings);
  std::string s = "User: ";
  s += g.pick(kRequests);
  s += " ";
  s += adj;
  s += " ";
  s += animal;
  s += ".\n\nAssistant: Once upon a time, there was a ";
  s += adj;
  s += " ";
  s += animal;
  s += " named ";
  s += name;
  s += ". ";
  s += name;
  s += " lived ";
  s += g.pick(kHomes);
  s += ". ";
  s += g.pick(kWeather);
  s += " One day, ";
  s += name;
  s += " went to ";
  s += place;
  s += " and found ";
  s += thing;
  s += ". ";
  s += name;
  s += " was very ";
  s += feeling;
  s += ". ";
  switch (g.rng.next() % 3) {
    case 0:
      s += "Then ";
      s += name;
      s += " met ";
      s += friend_;
      s += ". They played with ";
      s += thing;
      s += " until the sun went down. ";
      break;
    case 1:
      s += "But the ";
      s += thing.substr(thing.find(' ') + 1);
      s += " belonged to ";
      s += friend_;
      s += ", so ";
      s += name;
      s += " gave it back. The friend said, \"Thank you!\" ";
      break;
    default:
      s += name;
      s += " took ";
      s += thing;
      s += " home and showed it to mom. Mom said, \"What a good ";
      s += animal;
      s += " you are!\" ";
      break;
  }
  s += fill(g.pick(kEndings), name);
  s += " The end.\n\n";
  return s;
}

}  // namespace

std::string generate_stories(int64_t n, uint64_t seed) {
  Gen g{SplitMix64{seed}};
  std::string out;
  for (int64_t i = 0; i < n; ++i) out += story(g);
  return out;
}

}  // namespace hearth::train
