// FileLock: an RAII advisory lock (flock) on a lock file, shared or exclusive. hearth processes
// on one store coordinate through these: writers of refs take refs.lock exclusively; pulls and
// imports hold gc.lock shared while blobs are not yet referenced, and gc holds it exclusively.
#pragma once

#include <string>

#include "hearth/core/status.h"

namespace hearth::store {

class FileLock {
 public:
  enum class Mode { kShared, kExclusive };

  FileLock() = default;
  ~FileLock();
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Blocks until the lock is held. `waiting_note` is logged once if another process holds it.
  static Result<FileLock> acquire(const std::string& path, Mode mode, const char* waiting_note = nullptr);
  // Does not block: FailedPrecondition when another process holds a conflicting lock.
  static Result<FileLock> try_acquire(const std::string& path, Mode mode);

  bool held() const { return fd_ >= 0; }
  void release();

 private:
  int fd_ = -1;
};

}  // namespace hearth::store
