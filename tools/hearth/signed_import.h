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

// The --sign-key / --no-provenance / --import flags, checked before any work so that a typo
// fails fast: the loaded key (none without --sign-key).
Result<std::optional<trust::PrivateKey>> load_signing_flags(const std::string& sign_key, bool no_provenance,
                                                            const std::string& import_ref);

// After `file` and its provenance statement (quantize::provenance_path_for(file)) are written:
// with a key, signs the statement into FILE.provenance.sigstore.json; with an import_ref,
// imports the file (and with a key signs it and attaches the signed statement).
Status sign_and_import_output(const std::string& file, const std::optional<trust::PrivateKey>& key,
                              const std::string& import_ref, uint64_t version);

}  // namespace hearth::cli
