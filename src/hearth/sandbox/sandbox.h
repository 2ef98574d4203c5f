// Parsing untrusted files in a confined child process.
//
// run_confined() forks. The child installs a seccomp filter (libseccomp) whose default action
// kills the whole process, and which allows only: reading files that are already open, memory
// management without executable mappings, futexes, clocks, signals to itself, exiting, and
// writing to its own result pipe (and to stderr, which it points at /dev/null first). So there
// is no network, no process or thread creation, no file opened, and nothing written anywhere. The child then runs `work` and sends its
// result back. A crash, a forbidden system call or a timeout inside the child becomes an error
// for the caller, which carries on; a parser exploited by a hostile file gets nothing more.
//
// Open what `work` needs (map the file) before calling: the child cannot open anything.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "hearth/core/status.h"

namespace hearth::sandbox {

// True in AddressSanitizer builds (tests only): there the child keeps the real stderr for the
// sanitizers' reports, may make pipes and write fds above 2 (UBSan probes memory through a pipe
// of its own), and the runtime's crash and exception paths make calls that the filter forbids
// (so a crash or throw in the child shows as the sandbox's kill).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif
#else
inline constexpr bool kSanitizerBuild = false;
#endif

struct ConfineOptions {
  double timeout_s = 300;                     // the child is killed after this long
  size_t max_result_bytes = size_t{64} << 20;  // a larger result kills the child
};

// Runs `work` in a confined child and returns what it returned. `what` names the work in
// errors, e.g. "parsing model.gguf". The error of a child killed by the filter says so
// (ErrorCode::kPermissionDenied).
//
// Test hook: HEARTH_SANDBOX_TEST_HOOK=socket|fork|open|write makes the child attempt that call
// after the filter is in place and before `work`, to show that the filter kills it.
Result<std::string> run_confined(std::string_view what, const std::function<Result<std::string>()>& work,
                                 const ConfineOptions& options = {});

}  // namespace hearth::sandbox
