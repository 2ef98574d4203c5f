// Test support: a "node" is a fresh $HEARTH_HOME with a store, a trust policy and helpers to
// import, sign and trust the shared test model.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "hearth/core/atomic_file.h"
#include "hearth/store/model_import.h"
#include "hearth/store/store.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/signing_key.h"
#include "shared_data.h"

namespace hearth::testing {

struct Node {
  std::filesystem::path home;
  std::unique_ptr<store::Store> store;

  explicit Node(const std::string& prefix) : home(make_temp_dir(prefix)) {
    store = std::make_unique<store::Store>(std::move(*store::Store::open(home.string())));
  }
  ~Node() {
    std::error_code ec;
    std::filesystem::remove_all(home, ec);
  }

  store::Digest import(const std::filesystem::path& gguf, const std::string& ref, uint64_t version) {
    store::ImportOptions o;
    o.version = version;
    auto r = store::import_gguf(*store, gguf.string(), *store::parse_reference(ref), o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r->manifest : store::Digest();
  }

  void sign(const std::string& ref, const trust::PrivateKey& key) {
    auto r = trust::sign_model(*store, *store::parse_reference(ref), key);
    EXPECT_TRUE(r.ok()) << r.status().message();
  }

  // Trusts `key` for `pattern` (replacing the policy).
  void trust(const trust::PrivateKey& key, const std::string& pattern, bool allow_unsigned = false) {
    std::filesystem::create_directories(home / "trust");
    ASSERT_TRUE(write_file_atomic((home / "trust/publisher.pub").string(), key.public_key().pem()).ok());
    std::string policy = std::string("{\"allow_unsigned\": ") + (allow_unsigned ? "true" : "false") +
                         ", \"publishers\": [{\"name\": \"publisher\", \"key\": \"publisher.pub\", \"models\": [\"" +
                         pattern + "\"]}]}";
    ASSERT_TRUE(write_file_atomic((home / "trust/policy.json").string(), policy).ok());
  }
};

inline trust::PrivateKey new_key() { return *trust::PrivateKey::generate(trust::KeyAlgorithm::kEcdsaP256); }

}  // namespace hearth::testing
