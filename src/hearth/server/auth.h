// API keys and per-key quotas. Keys come from --api-key (unlimited) and --api-key-file, whose
// lines read
//
//   KEY [models=ID,ID...] [rpm=N] [tpm=N]      # comment
//
// (models: the model ids the key may use; rpm / tpm: requests and tokens per minute). Keys
// are compared in constant time (no early exit on the first differing byte or key).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::server {

struct ApiKey {
  std::string key;
  std::vector<std::string> models;  // empty: every model
  int64_t rpm = 0;                  // 0: unlimited
  int64_t tpm = 0;                  // 0: unlimited
  std::string label;                // for logs: "key#N" (the key itself is never logged)
};

// Parses a key file's text; errors name the source and line.
Result<std::vector<ApiKey>> parse_api_key_file(std::string_view text, const std::string& source);

// Equality that takes the same time for every input of the same lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

class Auth {
 public:
  explicit Auth(std::vector<ApiKey> keys);

  bool enabled() const { return !keys_.empty(); }
  // The key presented as "Authorization: Bearer KEY" (or "x-api-key: KEY"), or -1. Every
  // configured key is compared.
  int authenticate(std::string_view authorization, std::string_view x_api_key) const;
  const ApiKey& key(int index) const { return keys_[static_cast<size_t>(index)]; }
  bool model_allowed(int index, std::string_view model) const;

  // Counts a request against the key's per-minute quotas. Returns 0 when allowed, else the
  // seconds to wait (for Retry-After).
  int64_t admit_request(int index);
  // Counts tokens used by a finished request.
  void add_tokens(int index, int64_t tokens);

 private:
  struct Usage {
    std::deque<std::chrono::steady_clock::time_point> requests;
    std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> tokens;
    int64_t tokens_in_window = 0;
  };
  void expire(Usage& u, std::chrono::steady_clock::time_point now);

  std::vector<ApiKey> keys_;
  std::mutex mu_;
  std::vector<Usage> usage_;
};

}  // namespace hearth::server
