#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "hearth/core/atomic_file.h"
#include "hearth/store/model_config.h"
#include "hearth/store/model_import.h"
#include "hearth/store/store.h"
#include "shared_data.h"

namespace hearth::store {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = testing::make_temp_dir("hearth-store");
    auto s = Store::open(home_.string());
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::make_unique<Store>(std::move(*s));
  }
  void TearDown() override { fs::remove_all(home_); }

  // A small model made of raw blobs (no GGUF parsing needed).
  Digest put_model(const std::string& name, const std::string& tag, const std::string& weights) {
    auto w = store_->put_blob(weights, kModelWeightMediaType);
    EXPECT_TRUE(w.ok());
    w->annotations[std::string(kAnnotationTitle)] = "model.gguf";
    auto c = store_->put_blob("{\"config\":{}}", kModelConfigMediaType);
    Manifest m;
    m.artifact_type = std::string(kModelArtifactType);
    m.config = *c;
    m.layers.push_back(*w);
    auto d = store_->put_manifest(m);
    EXPECT_TRUE(d.ok());
    EXPECT_TRUE(store_->set_tag(name, tag, *d).ok());
    return *d;
  }

  fs::path home_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, BlobsAreContentAddressed) {
  auto d = store_->put_blob("hello", "text/plain");
  ASSERT_TRUE(d.ok());
  // sha256("hello"), computed with coreutils sha256sum.
  EXPECT_EQ(d->digest.str(), "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(store_->blob_path(d->digest), (home_ / "store/blobs/sha256" / d->digest.hex()).string());
  auto back = store_->read_blob(d->digest, 100);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "hello");
  EXPECT_TRUE(store_->verify_blob(d->digest).ok());
}

TEST_F(StoreTest, TamperedBlobIsDataLoss) {
  auto d = store_->put_blob("hello", "text/plain");
  ASSERT_TRUE(write_file_atomic(store_->blob_path(d->digest), std::string_view("jello")).ok());
  EXPECT_EQ(store_->read_blob(d->digest, 100).status().code(), ErrorCode::kDataLoss);
  EXPECT_EQ(store_->verify_blob(d->digest).code(), ErrorCode::kDataLoss);
  auto report = store_->check();
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
}

TEST_F(StoreTest, TagsPinsRemoveAndGc) {
  Digest a = put_model("acme/stories", "v1", "weights-one");
  Digest b = put_model("acme/stories", "v2", "weights-two");
  EXPECT_EQ(*store_->resolve(*parse_reference("acme/stories:v1")), a);
  EXPECT_EQ(*store_->resolve(*parse_reference("acme/stories@" + b.str())), b);
  // A digest the name does not hold does not resolve, even if the blob exists.
  auto other = store_->put_blob("x", "text/plain");
  EXPECT_EQ(store_->resolve(*parse_reference("acme/stories@" + other->digest.str())).status().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->resolve(*parse_reference("acme/stories:v3")).status().code(), ErrorCode::kNotFound);

  auto list = store_->list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);

  ASSERT_TRUE(store_->remove(*parse_reference("acme/stories:v1")).ok());
  EXPECT_EQ(store_->resolve(*parse_reference("acme/stories:v1")).status().code(), ErrorCode::kNotFound);
  auto gc = store_->gc();
  ASSERT_TRUE(gc.ok());
  // The v1 manifest and its weights go, plus the unreferenced "x"; the shared config stays.
  EXPECT_EQ(gc->blobs_removed, 3u);
  EXPECT_FALSE(store_->has_blob(a));
  EXPECT_TRUE(store_->has_blob(b));
  auto check = store_->check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);
}

TEST_F(StoreTest, GcKeepsReferrersOfLiveManifests) {
  Digest a = put_model("acme/stories", "v1", "weights-one");
  auto bundle = store_->put_blob("{\"sig\":1}", kSigstoreBundleMediaType);
  Manifest sig;
  sig.artifact_type = std::string(kSigstoreBundleMediaType);
  sig.config = *store_->put_blob(kEmptyJson, kOciEmptyMediaType);
  sig.layers.push_back(*bundle);
  sig.subject = Descriptor{std::string(kOciManifestMediaType), a, *store_->blob_size(a), {}, {}};
  Digest s = *store_->put_manifest(sig);
  ASSERT_TRUE(store_->add_referrer(a, s).ok());
  ASSERT_TRUE(store_->gc().ok());
  EXPECT_TRUE(store_->has_blob(s));
  EXPECT_TRUE(store_->has_blob(bundle->digest));
  ASSERT_TRUE(store_->remove(*parse_reference("acme/stories:v1")).ok());
  ASSERT_TRUE(store_->gc().ok());
  EXPECT_FALSE(store_->has_blob(s));
  EXPECT_FALSE(store_->has_blob(bundle->digest));
  EXPECT_TRUE(store_->referrers(a)->empty());
}

// The audit: one flipped byte in a tagged manifest made gc delete the model's intact weights.
TEST_F(StoreTest, GcRefusesWhileAManifestIsUnreadableAndRepairDropsIt) {
  Digest a = put_model("acme/stories", "v1", "weights-one");
  Digest weights = sha256_of(std::string_view("weights-one"));
  std::string bytes = *store_->read_blob(a, 1 << 20);
  bytes[bytes.size() / 2] ^= 0x01;
  ASSERT_TRUE(write_file_atomic(store_->blob_path(a), bytes).ok());

  auto gc = store_->gc();
  ASSERT_FALSE(gc.ok());
  EXPECT_EQ(gc.status().code(), ErrorCode::kDataLoss);
  EXPECT_NE(gc.status().message().find("acme/stories:v1"), std::string::npos) << gc.status().message();
  EXPECT_TRUE(store_->has_blob(weights));  // nothing was deleted
  EXPECT_TRUE(store_->has_blob(a));

  auto check = store_->check();
  ASSERT_TRUE(check.ok());
  ASSERT_FALSE(check->ok());
  bool named = false;
  for (const auto& p : check->problems) named = named || p.find("acme/stories@" + a.str()) != std::string::npos;
  EXPECT_TRUE(named);

  // Only the explicit repair drops the entry; then gc runs and frees what nothing names.
  auto dropped = store_->repair_drop_broken();
  ASSERT_TRUE(dropped.ok()) << dropped.status().message();
  EXPECT_EQ(dropped->size(), 2u);  // the tag and the pin
  EXPECT_EQ(store_->resolve(*parse_reference("acme/stories:v1")).status().code(), ErrorCode::kNotFound);
  gc = store_->gc();
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_FALSE(store_->has_blob(weights));
}

TEST_F(StoreTest, GcRefusesWhenAReferrerIsMissing) {
  Digest a = put_model("acme/stories", "v1", "weights-one");
  Digest ghost = sha256_of(std::string_view("a signature manifest that is gone"));
  ASSERT_TRUE(store_
                  ->update_refs([&](RefsTable& t) {
                    t.referrers[a].insert(ghost);
                    return ok_status();
                  })
                  .ok());
  auto gc = store_->gc();
  ASSERT_FALSE(gc.ok());
  EXPECT_NE(gc.status().message().find(ghost.str()), std::string::npos) << gc.status().message();
  EXPECT_TRUE(store_->has_blob(sha256_of(std::string_view("weights-one"))));
}

// A killed import leaves its temp file: check reports it, gc removes it, partial downloads stay.
TEST_F(StoreTest, CheckReportsTempFilesAndGcRemovesThem) {
  put_model("acme/stories", "v1", "weights-one");
  ASSERT_TRUE(write_file_atomic(store_->tmp_dir() + "/ingest-killed", std::string(1000, 'x')).ok());
  ASSERT_TRUE(write_file_atomic(store_->partial_path(sha256_of(std::string_view("p"))), std::string("abc")).ok());
  auto check = store_->check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok());
  ASSERT_EQ(check->temp_files.size(), 1u);
  EXPECT_NE(check->temp_files[0].find("ingest-killed"), std::string::npos);
  EXPECT_EQ(check->partial_downloads, 1u);
  auto gc = store_->gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->temp_files_removed, 1u);
  EXPECT_FALSE(fs::exists(store_->tmp_dir() + "/ingest-killed"));
  EXPECT_TRUE(store_->check()->temp_files.empty());
}

// Import reads the facts, the hash and the stored bytes from one open file: replacing the
// path after it was opened changes none of them.
TEST_F(StoreTest, ImportUsesOneOpenFileForFactsHashAndBytes) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::string q8 = (shared / "models/stories260K-Q8_0.gguf").string();
  const std::string f32 = (shared / "models/stories260K-f32.gguf").string();
  const std::string path = (home_ / "model.gguf").string();
  fs::copy_file(q8, path);
  auto file = MappedFile::open(path);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(write_file_atomic(path, *read_file(f32)).ok());  // swapped under the importer
  auto r = import_gguf(*store_, *file, *parse_reference("tiny/stories:q8"), ImportOptions{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->weights.digest, *sha256_file(q8));
  EXPECT_EQ(r->weights.size, fs::file_size(q8));
  EXPECT_EQ(r->facts.quantization, "Q8_0");
  EXPECT_EQ(*sha256_file(store_->blob_path(r->weights.digest)), *sha256_file(q8));
}

TEST_F(StoreTest, ImportsGgufAsModelPackArtifact) {
  HEARTH_REQUIRE_SHARED(shared);
  std::string file = (shared / "models/stories260K-Q8_0.gguf").string();
  ImportOptions opts;
  opts.version = 3;
  auto r = import_gguf(*store_, file, *parse_reference("tiny/stories:q8"), opts);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->weights.size, fs::file_size(file));
  EXPECT_EQ(r->weights.digest, *sha256_file(file));
  auto m = store_->read_manifest(r->manifest);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->artifact_type, kModelArtifactType);
  EXPECT_EQ(m->config.media_type, kModelConfigMediaType);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].media_type, kModelWeightMediaType);
  EXPECT_EQ(m->layers[0].annotations.at(std::string(kAnnotationTitle)), "stories260K-Q8_0.gguf");
  EXPECT_EQ(*manifest_version(*m), 3u);
  auto cfg = parse_model_config(*store_->read_blob(m->config.digest, 1 << 20));
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->architecture, "llama");  // shared/README.md: a Llama model
  EXPECT_EQ(cfg->quantization, "Q8_0");
  // 260K parameters by the README's name; the tensor element sum is in that range.
  EXPECT_GT(cfg->parameters, 200000u);
  EXPECT_LT(cfg->parameters, 320000u);
  // Importing the same file again stores nothing new.
  auto again = import_gguf(*store_, file, *parse_reference("tiny/stories:again"), opts);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->weights.digest, r->weights.digest);
}

TEST(ParamSize, ModelPackForm) {
  EXPECT_EQ(param_size_string(260000), "260K");
  EXPECT_EQ(param_size_string(6700000000ull), "6.7B");
  EXPECT_EQ(param_size_string(8000000000ull), "8B");
  EXPECT_EQ(param_size_string(999), "999");
}

TEST_F(StoreTest, ConcurrentProcessesUpdateRefsSafely) {
  // Eight processes tag at once; the refs lock must serialize their read-modify-writes.
  constexpr int kProcs = 8;
  constexpr int kTagsEach = 10;
  Digest a = put_model("acme/base", "v1", "weights");
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    if (pid == 0) {
      auto s = Store::open(home_.string());
      for (int i = 0; i < kTagsEach; ++i) {
        if (!s->set_tag("acme/p" + std::to_string(p), "t" + std::to_string(i), a).ok()) _exit(1);
      }
      _exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    waitpid(k, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto t = store_->refs();
  ASSERT_TRUE(t.ok());
  size_t tags = 0;
  for (const auto& [name, repo] : t->repos) tags += repo.tags.size();
  EXPECT_EQ(tags, 1u + kProcs * kTagsEach);
}

}  // namespace
}  // namespace hearth::store
