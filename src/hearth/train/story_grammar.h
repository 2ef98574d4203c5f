// Short children's stories in hearth's plain chat format ("User: ...\n\nAssistant: ..."),
// generated from a small hand-written grammar with a seeded RNG. They are the part of the demo
// model's corpus that the project writes itself (nothing downloaded, no third-party text), and
// they teach the model to answer the demo's chat request.
#pragma once

#include <cstdint>
#include <string>

namespace hearth::train {

// `n` stories, each "User: <request>\n\nAssistant: <story>\n\n". Same seed, same text.
std::string generate_stories(int64_t n, uint64_t seed);

}  // namespace hearth::train
