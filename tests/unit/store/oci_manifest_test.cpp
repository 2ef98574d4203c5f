#include <gtest/gtest.h>

#include "hearth/store/oci_manifest.h"

namespace hearth::store {
namespace {

const char* kDigestA = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(OciManifest, RoundTripsModelManifest) {
  Manifest m;
  m.artifact_type = std::string(kModelArtifactType);
  m.config = empty_config_descriptor();
  Descriptor w;
  w.media_type = std::string(kModelWeightMediaType);
  w.digest = *Digest::parse(kDigestA);
  w.size = 379168;
  w.annotations[std::string(kAnnotationTitle)] = "model.gguf";
  m.layers.push_back(w);
  m.annotations[std::string(kAnnotationVersion)] = "7";
  auto back = parse_manifest(serialize_manifest(m));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->artifact_type, kModelArtifactType);
  ASSERT_EQ(back->layers.size(), 1u);
  EXPECT_EQ(back->layers[0].digest.str(), kDigestA);
  EXPECT_EQ(back->layers[0].size, 379168u);
  EXPECT_EQ(*manifest_version(*back), 7u);
  // The empty descriptor is the digest of "{}" (OCI image-spec, "Guidance for an empty descriptor").
  EXPECT_EQ(back->config.digest.str(), "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  EXPECT_EQ(back->config.size, 2u);
}

TEST(OciManifest, RefusesHostileDocuments) {
  std::string base = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                     R"("config":{"mediaType":"x","digest":"DIGEST","size":SIZE},"layers":[]})";
  auto make = [&](const std::string& digest, const std::string& size) {
    std::string s = base;
    s.replace(s.find("DIGEST"), 6, digest);
    s.replace(s.find("SIZE"), 4, size);
    return s;
  };
  EXPECT_TRUE(parse_manifest(make(kDigestA, "2")).ok());
  EXPECT_EQ(parse_manifest(make("sha256:../../etc/passwd", "2")).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_manifest(make(kDigestA, "-1")).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_manifest(make(kDigestA, "\"2\"")).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_manifest("{").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_manifest(R"({"schemaVersion":1})").status().code(), ErrorCode::kInvalidArgument);
  std::string huge(kMaxManifestBytes + 1, ' ');
  EXPECT_EQ(parse_manifest(huge).status().code(), ErrorCode::kOutOfRange);
  Manifest m;
  m.annotations[std::string(kAnnotationVersion)] = "12x";
  EXPECT_FALSE(manifest_version(m).ok());
}

TEST(OciManifest, RoundTripsIndex) {
  Index idx;
  Descriptor d;
  d.media_type = std::string(kOciManifestMediaType);
  d.digest = *Digest::parse(kDigestA);
  d.size = 10;
  d.artifact_type = std::string(kSigstoreBundleMediaType);
  idx.manifests.push_back(d);
  auto back = parse_index(serialize_index(idx));
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->manifests.size(), 1u);
  EXPECT_EQ(back->manifests[0].artifact_type, kSigstoreBundleMediaType);
}

}  // namespace
}  // namespace hearth::store
