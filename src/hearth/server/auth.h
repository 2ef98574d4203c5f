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

  // Token quotas hold under concurrency because a request reserves its tokens when it is
  // admitted (prompt + max_tokens per choice), before it generates anything, and settles when
  // it ends. Reserves between min_tokens and max_tokens: as many as the key's window has left
  // after what is used and what other requests hold. A key without tpm (or index -1) gets
  // max_tokens and nothing is recorded.
  struct TokenGrant {
    int64_t tokens = 0;       // reserved (>= min_tokens), or 0 when refused
    int64_t retry_after = 0;  // refused: seconds until min_tokens may fit; -1: never (over tpm)
  };
  TokenGrant reserve_tokens(int index, int64_t min_tokens, int64_t max_tokens);
  // Ends a reservation: `reserved` is released and `used` is counted in the window.
  void settle_tokens(int index, int64_t reserved, int64_t used);
  // Tokens counted in the key's window plus those reserved (for tests and logs).
  int64_t tokens_committed(int index);

 private:
  struct Usage {
    std::deque<std::chrono::steady_clock::time_point> requests;
    std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> tokens;
    int64_t tokens_in_window = 0;
    int64_t tokens_reserved = 0;  // held by requests still running
  };
  void expire(Usage& u, std::chrono::steady_clock::time_point now);

  std::vector<ApiKey> keys_;
  std::mutex mu_;
  std::vector<Usage> usage_;
};

// One request's token reservation (move-only). settle() counts what was used; a reservation
// dropped unsettled counts all it reserved, so an early exit never under-charges.
class TokenReservation {
 public:
  TokenReservation() = default;
  TokenReservation(Auth* auth, int index, int64_t reserved) : auth_(auth), index_(index), reserved_(reserved) {}
  TokenReservation(TokenReservation&& o) noexcept { *this = std::move(o); }
  TokenReservation& operator=(TokenReservation&& o) noexcept;
  TokenReservation(const TokenReservation&) = delete;
  TokenReservation& operator=(const TokenReservation&) = delete;
  ~TokenReservation() { settle(reserved_); }

  int64_t reserved() const { return reserved_; }
  void settle(int64_t used);

 private:
  Auth* auth_ = nullptr;
  int index_ = -1;
  int64_t reserved_ = 0;
};

}  // namespace hearth::server
