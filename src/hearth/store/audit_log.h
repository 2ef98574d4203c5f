// The append-only audit log ($HEARTH_HOME/audit.log): one JSON object per line, for pulls,
// pushes, imports, verifications, refusals and loads. Each record is written with a single
// O_APPEND write under an exclusive flock and fsynced before the call returns.
#pragma once

#include <string>

#include "hearth/core/status.h"

namespace hearth::store {

struct AuditEvent {
  std::string event;      // "pull", "push", "import", "verify", "refuse", "load", "sign", ...
  std::string outcome;    // "ok" or an error code name
  std::string ref;        // the reference or path acted on
  std::string digest;     // manifest digest, if known
  std::string publisher;  // key id, if known
  std::string detail;     // a short explanation (never prompts or completions)
};

std::string audit_log_path(const std::string& home);
Status append_audit(const std::string& home, const AuditEvent& event);

}  // namespace hearth::store
