// Air-gapped bundles: export → import with verification and no network; tampering and path
// tricks inside the tarball are refused.
#include <fstream>

#include <gtest/gtest.h>

#include "hearth/registry/model_bundle.h"
#include "hearth/registry/tar_archive.h"
#include "hearth/trust/model_resolver.h"
#include "test_nodes.h"

namespace hearth::registry {
namespace {

using hearth::testing::Node;

TEST(Bundle, ExportImportVerifiesOffline) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node source("hearth-bundle-src"), target("hearth-bundle-dst");
  auto key = hearth::testing::new_key();
  store::Digest manifest = source.import(model, "acme/stories:v1", 4);
  source.sign("acme/stories:v1", key);
  std::string file = (source.home / "stories.tar").string();
  auto ex = export_bundle(*source.store, *store::parse_reference("acme/stories:v1"), file);
  ASSERT_TRUE(ex.ok()) << ex.status().message();
  EXPECT_EQ(ex->signatures, 1u);
  EXPECT_EQ(ex->blobs, 6u);  // manifest, config, weights; signature manifest, empty config, bundle

  // Unsigned-refusing target without the key: refused, nothing tagged.
  auto refused = import_bundle(*target.store, file, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnauthenticated) << refused.status().message();
  EXPECT_FALSE(target.store->resolve(*store::parse_reference("acme/stories:v1")).ok());

  target.trust(key, "acme/*");
  auto im = import_bundle(*target.store, file, {});
  ASSERT_TRUE(im.ok()) << im.status().message();
  ASSERT_EQ(im->admitted.size(), 1u);
  EXPECT_NE(im->admitted[0].find("signed by publisher, version 4"), std::string::npos) << im->admitted[0];
  EXPECT_EQ(*target.store->resolve(*store::parse_reference("acme/stories:v1")), manifest);
  trust::ResolveOptions ro;
  ro.home = target.home.string();
  auto resolved = trust::resolve_model("acme/stories:v1", ro);
  ASSERT_TRUE(resolved.ok()) << resolved.status().message();
  EXPECT_EQ(*store::sha256_file(resolved->gguf_path()), *store::sha256_file(model.string()));
}

TEST(Bundle, TamperedBundleIsRefused) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node source("hearth-bundle-src"), target("hearth-bundle-dst");
  auto key = hearth::testing::new_key();
  source.import(model, "acme/stories:v1", 1);
  source.sign("acme/stories:v1", key);
  std::string file = (source.home / "stories.tar").string();
  ASSERT_TRUE(export_bundle(*source.store, *store::parse_reference("acme/stories:v1"), file).ok());
  // Flip one byte inside the weights (the 379 KB entry fills most of the archive).
  std::string bytes = *read_file(file);
  size_t at = bytes.size() / 2;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x01);
  ASSERT_TRUE(write_file_atomic(file, bytes).ok());
  target.trust(key, "acme/*");
  auto r = import_bundle(*target.store, file, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDataLoss) << r.status().message();
  EXPECT_FALSE(target.store->resolve(*store::parse_reference("acme/stories:v1")).ok());
  EXPECT_TRUE(target.store->check()->ok());
}

TEST(Bundle, PathTricksInsideTheArchiveAreRefused) {
  Node target("hearth-bundle-dst");
  for (const char* evil : {"blobs/sha256/../../../../tmp/hearth-pwned", "../escape", "/etc/cron.d/x",
                           "blobs/sha256/ABCDEF"}) {
    std::string file = (target.home / "evil.tar").string();
    {
      auto w = AtomicFileWriter::create(file);
      ASSERT_TRUE(w.ok());
      TarWriter tar(*w);
      ASSERT_TRUE(tar.add_bytes("oci-layout", R"({"imageLayoutVersion":"1.0.0"})").ok());
      ASSERT_TRUE(tar.add_bytes(evil, "payload").ok());
      ASSERT_TRUE(tar.finish().ok());
      ASSERT_TRUE(w->commit().ok());
    }
    auto r = import_bundle(*target.store, file, {});
    ASSERT_FALSE(r.ok()) << evil;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << evil << ": " << r.status().message();
  }
  EXPECT_FALSE(std::filesystem::exists("/tmp/hearth-pwned"));
  EXPECT_TRUE(target.store->check()->ok());
  EXPECT_EQ(target.store->check()->blobs_checked, 0u);
}

}  // namespace
}  // namespace hearth::registry
