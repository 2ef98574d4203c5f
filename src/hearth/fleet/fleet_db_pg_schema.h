// The PostgreSQL backend's schema, migrations and connection helpers (libpq), apart from the
// FleetDb implementation in fleet_db_pg.cpp. Internal to the fleet module.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <span>
#include <string>

#include "hearth/core/status.h"

namespace hearth::fleet::pg {

// The advisory-lock keys (per database): the leader's, and the one that serialises schema
// creation and migrations when several controllers start at once. "hearth" in ASCII, then 1 and 2.
inline constexpr int64_t kLeaderLockKey = 0x6865617274680001;
inline constexpr int64_t kMigrationLockKey = 0x6865617274680002;

// The baseline schema (version 4), as the SQLite backend's tables.
extern const char* const kSchema;

// The steps after the baseline, in order, as in fleet_db.cpp (`to`: the version after the step).
struct Migration {
  int to;
  const char* sql;
};
std::span<const Migration> migrations();

// The URL without its password, for messages.
std::string redact(const std::string& url);
// The connection's last error, trimmed ("out of memory" for a null connection).
std::string conn_error(PGconn* c);
// Connects with TCP keepalives on both sides (5 s idle, 2 s interval, 3 probes).
Result<PGconn*> connect(const std::string& url, const char* application_name);
// A decimal integer field (0 for null).
int64_t to_i64(const char* text);

}  // namespace hearth::fleet::pg
