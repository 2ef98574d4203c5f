// OCI image manifests, image indexes and descriptors (image-spec v1.1), with the CNCF ModelPack
// and sigstore media types hearth uses. Parsing treats the bytes as hostile: size cap, strict
// digests, sizes that fit in int64. nlohmann-json is seen only by oci_manifest.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/store/digest.h"

namespace hearth::store {

inline constexpr std::string_view kOciManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndexMediaType = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciEmptyMediaType = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view kModelArtifactType = "application/vnd.cncf.model.manifest.v1+json";
inline constexpr std::string_view kModelConfigMediaType = "application/vnd.cncf.model.config.v1+json";
inline constexpr std::string_view kModelWeightMediaType = "application/vnd.cncf.model.weight.v1.raw";
// An ONNX model's one layer (the .onnx protobuf, no external data); its config says format "onnx".
inline constexpr std::string_view kOnnxModelMediaType = "application/vnd.hearth.model.onnx.v1+protobuf";
// Whether a layer is a model's weights (a GGUF file or an ONNX model).
inline bool is_weight_media_type(std::string_view t) { return t == kModelWeightMediaType || t == kOnnxModelMediaType; }
inline constexpr std::string_view kSigstoreBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";

inline constexpr std::string_view kAnnotationTitle = "org.opencontainers.image.title";
inline constexpr std::string_view kAnnotationCreated = "org.opencontainers.image.created";
inline constexpr std::string_view kAnnotationFilepath = "org.cncf.model.filepath";
inline constexpr std::string_view kAnnotationVersion = "org.hearth.version";
inline constexpr std::string_view kAnnotationRefName = "org.opencontainers.image.ref.name";

// The empty JSON config "{}" used by artifacts without a config of their own.
inline constexpr std::string_view kEmptyJson = "{}";

// Manifests and indexes larger than this are refused before parsing.
inline constexpr uint64_t kMaxManifestBytes = 4u << 20;

using Annotations = std::map<std::string, std::string>;

struct Descriptor {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;
  std::string artifact_type;  // optional
  Annotations annotations;
};

struct Manifest {
  std::string media_type{kOciManifestMediaType};
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  Annotations annotations;
};

struct Index {
  std::string media_type{kOciIndexMediaType};
  std::vector<Descriptor> manifests;
  Annotations annotations;
};

Result<Manifest> parse_manifest(std::string_view json);
std::string serialize_manifest(const Manifest& m);
Result<Index> parse_index(std::string_view json);
std::string serialize_index(const Index& index);

// The empty config descriptor (digest of "{}").
Descriptor empty_config_descriptor();

// A manifest's model version from its kAnnotationVersion annotation; 0 when absent.
Result<uint64_t> manifest_version(const Manifest& m);

}  // namespace hearth::store
