// What `quantize` and `finetune` do with --import NAME:TAG [--sign-key KEY]: import the file they
// wrote into the store, and with a key sign it and attach the signed provenance statement as an
// attestation (never counted as a signature of the model).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hearth/core/status.h"
#include "hearth/trust/signing_key.h"

namespace hearth::cli {

// `provenance_bundle`: the signed statement (a sigstore bundle's JSON), "" for none.
Status import_signed_output(const std::string& file, const std::string& import_ref, uint64_t version,
                            const std::optional<trust::PrivateKey>& key, const std::string& provenance_bundle);

}  // namespace hearth::cli
