// Air-gapped bundles: export → import with verification and no network; tampering and path
// tricks inside the tarball are refused.
#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "hearth/registry/model_bundle.h"
#include "hearth/registry/tar_archive.h"
#include "hearth/trust/model_resolver.h"
#include "test_nodes.h"

namespace hearth::registry {
namespace {

namespace fs = std::filesystem;

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
  for (const char* evil :
       {"blobs/sha256/../../../../tmp/hearth-pwned", "../escape", "/etc/cron.d/x", "blobs/sha256/ABCDEF"}) {
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

// An 8 GiB model used to export with a wrapped size of 0 (11 octal digits). The header for a
// 9 GiB + 1 entry is written by the real encoder into a sparse file (the content is a hole: no
// disk use), and the real reader returns the size; unread content is skipped with lseek, so
// nothing reads 9 GiB. (Round-tripping a 9 GiB GGUF through export would write 9 GiB.)
TEST(Bundle, SizesOf8GiBAndMoreRoundTripInTheTarHeader) {
  fs::path dir = hearth::testing::make_temp_dir("hearth-bigtar");
  const std::string file = (dir / "big.tar").string();
  const uint64_t big = (uint64_t{9} << 30) + 1;
  {
    auto h = tar_header("blobs/sha256/big", big, '0');
    ASSERT_TRUE(h.ok()) << h.status().message();
    auto small = tar_header("small", 5, '0');
    ASSERT_TRUE(small.ok());
    std::ofstream out(file, std::ios::binary);
    out.write(h->data(), static_cast<std::streamsize>(h->size()));
    // content (a hole) + padding to 512, then "small" + its content, then two zero blocks.
    const uint64_t padded = (big + 511) / 512 * 512;
    out.seekp(static_cast<std::streamoff>(512 + padded));
    out.write(small->data(), 512);
    out.write("hello", 5);
    out.close();
    fs::resize_file(file, 512 + padded + 512 + 512 + 1024);
  }
  std::vector<std::pair<std::string, uint64_t>> seen;
  std::string small_content;
  Status s = read_tar(file, [&](const TarEntry& e, TarChunkReader& read) -> Status {
    seen.emplace_back(e.name, e.size);
    if (e.name == "small") {
      for (;;) {
        HEARTH_ASSIGN_OR_RETURN(std::string_view chunk, read());
        if (chunk.empty()) break;
        small_content.append(chunk);
      }
    } else {
      HEARTH_ASSIGN_OR_RETURN(std::string_view first, read());  // a little of the hole
      EXPECT_EQ(first.size(), size_t{1} << 20);
      EXPECT_EQ(first[0], '\0');
    }
    return ok_status();
  });
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (std::pair<std::string, uint64_t>{"blobs/sha256/big", big}));
  EXPECT_EQ(seen[1], (std::pair<std::string, uint64_t>{"small", 5}));
  EXPECT_EQ(small_content, "hello");
  // The base-256 field (GNU/star/libarchive), and octal below 8 GiB as before.
  EXPECT_EQ(static_cast<unsigned char>((*tar_header("x", big, '0'))[124]), 0x80);
  EXPECT_EQ((*tar_header("x", (uint64_t{8} << 30) - 1, '0')).substr(124, 11), "77777777777");
  fs::remove_all(dir);
}

// Bundle import takes the per-blob lock that pull takes: while a pull holds a blob's lock,
// the import waits instead of truncating the same partial file under it.
TEST(Bundle, ImportTakesThePerBlobLockOfPull) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node source("hearth-bundle-lsrc"), target("hearth-bundle-ldst");
  auto key = hearth::testing::new_key();
  source.import(model, "acme/stories:v1", 1);
  source.sign("acme/stories:v1", key);
  target.trust(key, "acme/*");
  std::string file = (source.home / "stories.tar").string();
  ASSERT_TRUE(export_bundle(*source.store, *store::parse_reference("acme/stories:v1"), file).ok());
  store::Digest weights = *store::sha256_file(model.string());
  auto held = store::FileLock::acquire(target.store->download_lock_path(weights), store::FileLock::Mode::kExclusive);
  ASSERT_TRUE(held.ok());
  std::atomic<bool> done{false};
  Result<BundleImport> im = Status(ErrorCode::kInternal, "not run");
  std::thread importer([&] {
    im = import_bundle(*target.store, file, {});
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(done.load());  // waiting on the lock
  EXPECT_FALSE(fs::exists(target.store->partial_path(weights)));
  *held = store::FileLock();  // released
  importer.join();
  ASSERT_TRUE(im.ok()) << im.status().message();
  EXPECT_TRUE(target.store->has_blob(weights));
  EXPECT_FALSE(fs::exists(target.store->download_lock_path(weights)));
}

}  // namespace
}  // namespace hearth::registry
