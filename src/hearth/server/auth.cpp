// API key parsing, constant-time matching and sliding-window quotas.
#include "hearth/server/auth.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace hearth::server {
namespace {

constexpr auto kWindow = std::chrono::seconds(60);

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(sep, b);
    if (e == std::string_view::npos) e = s.size();
    std::string_view part = trim(s.substr(b, e - b));
    if (!part.empty()) out.emplace_back(part);
    b = e + 1;
  }
  return out;
}

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

Result<std::vector<ApiKey>> parse_api_key_file(std::string_view text, const std::string& source) {
  std::vector<ApiKey> keys;
  size_t line_no = 0, b = 0;
  while (b < text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    std::string_view line = text.substr(b, e - b);
    b = e + 1;
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    std::vector<std::string> fields = split(line, ' ');
    ApiKey k;
    k.key = fields[0];
    auto where = [&] { return fmt::format("{}:{}", source, line_no); };
    if (k.key.find('=') != std::string::npos) {
      return make_error(ErrorCode::kInvalidArgument, "{}: the line must start with the key, not '{}'", where(),
                        fields[0]);
    }
    for (size_t i = 1; i < fields.size(); ++i) {
      const std::string& f = fields[i];
      size_t eq = f.find('=');
      if (eq == std::string::npos) {
        return make_error(ErrorCode::kInvalidArgument, "{}: expected name=value, got '{}'", where(), f);
      }
      std::string name = f.substr(0, eq), value = f.substr(eq + 1);
      if (name == "models") {
        k.models = split(value, ',');
      } else if (name == "rpm" || name == "tpm") {
        int64_t v = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (ec != std::errc() || p != value.data() + value.size() || v < 0) {
          return make_error(ErrorCode::kInvalidArgument, "{}: {} must be a non-negative integer, not '{}'", where(),
                            name, value);
        }
        (name == "rpm" ? k.rpm : k.tpm) = v;
      } else {
        return make_error(ErrorCode::kInvalidArgument, "{}: unknown field '{}' (known: models, rpm, tpm)", where(),
                          name);
      }
    }
    keys.push_back(std::move(k));
  }
  return keys;
}

Auth::Auth(std::vector<ApiKey> keys) : keys_(std::move(keys)), usage_(keys_.size()) {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].label.empty()) keys_[i].label = "key#" + std::to_string(i + 1);
  }
}

int Auth::authenticate(std::string_view authorization, std::string_view x_api_key) const {
  std::string_view presented = x_api_key;
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() > kBearer.size() && authorization.substr(0, kBearer.size()) == kBearer) {
    presented = trim(authorization.substr(kBearer.size()));
  }
  if (presented.empty()) return -1;
  int found = -1;
  for (size_t i = 0; i < keys_.size(); ++i) {
    const bool eq = constant_time_equal(presented, keys_[i].key);
    found = (eq && found < 0) ? static_cast<int>(i) : found;
  }
  return found;
}

bool Auth::model_allowed(int index, std::string_view model) const {
  const ApiKey& k = key(index);
  return k.models.empty() || std::find(k.models.begin(), k.models.end(), model) != k.models.end();
}

void Auth::expire(Usage& u, std::chrono::steady_clock::time_point now) {
  while (!u.requests.empty() && now - u.requests.front() >= kWindow) u.requests.pop_front();
  while (!u.tokens.empty() && now - u.tokens.front().first >= kWindow) {
    u.tokens_in_window -= u.tokens.front().second;
    u.tokens.pop_front();
  }
}

int64_t Auth::admit_request(int index) {
  const ApiKey& k = key(index);
  if (k.rpm == 0 && k.tpm == 0) return 0;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  Usage& u = usage_[static_cast<size_t>(index)];
  expire(u, now);
  auto wait_for = [&](std::chrono::steady_clock::time_point oldest) {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(oldest + kWindow - now).count();
    return std::max<int64_t>(1, left + 1);
  };
  if (k.rpm > 0 && static_cast<int64_t>(u.requests.size()) >= k.rpm) return wait_for(u.requests.front());
  if (k.tpm > 0 && u.tokens_in_window + u.tokens_reserved >= k.tpm) {
    return u.tokens.empty() ? 1 : wait_for(u.tokens.front().first);  // empty: held by running requests
  }
  u.requests.push_back(now);
  return 0;
}

void Auth::add_tokens(int index, int64_t tokens) {
  if (index < 0 || key(index).tpm == 0 || tokens <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  Usage& u = usage_[static_cast<size_t>(index)];
  expire(u, now);
  u.tokens.emplace_back(now, tokens);
  u.tokens_in_window += tokens;
}

Auth::TokenGrant Auth::reserve_tokens(int index, int64_t min_tokens, int64_t max_tokens) {
  max_tokens = std::max(max_tokens, min_tokens);
  if (index < 0 || key(index).tpm == 0) return {max_tokens, 0};
  const int64_t tpm = key(index).tpm;
  if (min_tokens > tpm) return {0, -1};
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  Usage& u = usage_[static_cast<size_t>(index)];
  expire(u, now);
  const int64_t left = tpm - u.tokens_in_window - u.tokens_reserved;
  if (left >= min_tokens) {
    const int64_t granted = std::min(left, max_tokens);
    u.tokens_reserved += granted;
    return {granted, 0};
  }
  // The wait until enough used tokens leave the window; tokens held by running requests come
  // back when they settle, so retry in a second if expiry alone is not enough.
  int64_t freed = 0;
  for (const auto& [when, n] : u.tokens) {
    freed += n;
    if (left + freed >= min_tokens) {
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(when + kWindow - now).count();
      return {0, std::max<int64_t>(1, secs + 1)};
    }
  }
  return {0, 1};
}

void Auth::settle_tokens(int index, int64_t reserved, int64_t used) {
  if (index < 0 || key(index).tpm == 0) return;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  Usage& u = usage_[static_cast<size_t>(index)];
  u.tokens_reserved = std::max<int64_t>(0, u.tokens_reserved - std::max<int64_t>(reserved, 0));
  expire(u, now);
  if (used > 0) {
    u.tokens.emplace_back(now, used);
    u.tokens_in_window += used;
  }
}

int64_t Auth::tokens_committed(int index) {
  std::lock_guard<std::mutex> lock(mu_);
  Usage& u = usage_[static_cast<size_t>(index)];
  expire(u, std::chrono::steady_clock::now());
  return u.tokens_in_window + u.tokens_reserved;
}

TokenReservation& TokenReservation::operator=(TokenReservation&& o) noexcept {
  if (this != &o) {
    settle(reserved_);
    auth_ = o.auth_;
    index_ = o.index_;
    reserved_ = o.reserved_;
    o.auth_ = nullptr;
  }
  return *this;
}

void TokenReservation::settle(int64_t used) {
  if (auth_ == nullptr) return;
  auth_->settle_tokens(index_, reserved_, used);
  auth_ = nullptr;
}

}  // namespace hearth::server
