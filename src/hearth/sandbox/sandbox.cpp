#include "hearth/sandbox/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace hearth::sandbox {
namespace {

// The child's exit codes besides 0 (result sent).
constexpr int kExitNoFilter = 97;   // the filter could not be installed
constexpr int kExitNoResult = 98;   // the result could not be written

constexpr bool kSanitized = kSanitizerBuild;

bool write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// The allow-list. Everything else kills the process (SECCOMP_RET_KILL_PROCESS).
bool install_filter(int result_fd) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (!ctx) return false;
  bool ok = true;
  auto allow = [&](int nr) { ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) == 0; };
  // Reading what is already open, and its metadata.
  for (int nr : {SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64), SCMP_SYS(preadv), SCMP_SYS(lseek), SCMP_SYS(fstat),
                 SCMP_SYS(newfstatat), SCMP_SYS(close)}) {
    allow(nr);
  }
  // Memory, threads' synchronisation (no thread can be created), time, exiting.
  for (int nr : {SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(futex),
                 SCMP_SYS(sched_yield), SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getrandom), SCMP_SYS(clock_gettime),
                 SCMP_SYS(gettimeofday), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(rt_sigprocmask),
                 SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(exit), SCMP_SYS(exit_group)}) {
    allow(nr);
  }
  // Signals to itself only (abort(), raise()): a crash then shows as its signal.
  ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid()))) == 0;
  // Mappings, never executable ones.
  for (int nr : {SCMP_SYS(mmap), SCMP_SYS(mprotect)}) {
    ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) == 0;
  }
  // Writes: the result pipe, and stderr (/dev/null by now; in sanitizer builds the real one,
  // for their reports).
  for (int nr : {SCMP_SYS(write), SCMP_SYS(writev)}) {
    ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(result_fd))) == 0;
    ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, 2)) == 0;
  }
  if (kSanitized) {
    // Sanitizer builds only (tests): UBSan's dynamic-type check probes memory by writing it into
    // a pipe of its own (sanitizer_common's IsAccessibleMemoryRange); a refused pipe would turn
    // into false reports. So there, pipes may be made and any fd above 2 written; stdout stays
    // forbidden and nothing can be opened.
    allow(SCMP_SYS(pipe));
    allow(SCMP_SYS(pipe2));
    for (int nr : {SCMP_SYS(write), SCMP_SYS(writev)}) {
      ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_GE, 3)) == 0;
    }
  }
  ok = ok && seccomp_load(ctx) == 0;  // sets no_new_privs first (the default attribute)
  seccomp_release(ctx);
  return ok;
}

// HEARTH_SANDBOX_TEST_HOOK: a forbidden call, made on purpose.
void test_hook(const char* hook) {
  if (!hook || !*hook) return;
  const std::string_view h = hook;
  if (h == "socket") {
    (void)::socket(AF_INET, SOCK_STREAM, 0);
  } else if (h == "fork") {
    (void)::fork();
  } else if (h == "open") {
    (void)::open("/tmp/hearth-sandbox-hook", O_WRONLY | O_CREAT, 0600);
  } else if (h == "write") {
    (void)!::write(1, "x", 1);
  }
}

// In the child: never returns.
[[noreturn]] void child(int fd, const std::function<Result<std::string>()>& work) {
  const char* hook = std::getenv("HEARTH_SANDBOX_TEST_HOOK");
  // A library's own diagnostics (libprotobuf logs malformed input to stderr) go nowhere rather
  // than killing the child: stderr becomes /dev/null, the one other fd it may write. (Sanitizer
  // builds keep the real stderr for their reports.)
  if (!kSanitized) {
    const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd < 0 || ::dup2(null_fd, 2) < 0) ::_exit(kExitNoFilter);
    ::close(null_fd);
  }
  if (!install_filter(fd)) ::_exit(kExitNoFilter);
  test_hook(hook);
  Status status;
  std::string payload;
  try {
    Result<std::string> r = work();
    if (r.ok()) {
      payload = std::move(r).value();
    } else {
      status = r.status();
    }
  } catch (const std::bad_alloc&) {
    status = Status(ErrorCode::kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    status = Status(ErrorCode::kInternal, e.what());
  }
  // [u32 code][u64 length][payload or message]
  const uint32_t code = static_cast<uint32_t>(status.code());
  const std::string& body = status.ok() ? payload : status.message();
  const uint64_t len = body.size();
  if (!write_all(fd, &code, sizeof code) || !write_all(fd, &len, sizeof len) || !write_all(fd, body.data(), body.size())) {
    ::_exit(kExitNoResult);
  }
  ::_exit(0);
}

}  // namespace

Result<std::string> run_confined(std::string_view what, const std::function<Result<std::string>()>& work,
                                 const ConfineOptions& options) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::kIo, "{}: cannot create the sandbox's pipe: {}", what, std::strerror(errno));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return make_error(ErrorCode::kIo, "{}: cannot start the sandboxed parser: {}", what, std::strerror(e));
  }
  if (pid == 0) {
    ::close(fds[0]);
    child(fds[1], work);
  }
  ::close(fds[1]);
  const int fd = fds[0];

  // Read the result until the child closes the pipe, within the deadline and the size bound.
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.timeout_s);
  bool timed_out = false, too_large = false, read_error = false;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    const int pr = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) {
      read_error = true;
      break;
    }
    if (pr == 0) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      read_error = true;
      break;
    }
    if (n == 0) break;
    if (got.size() + static_cast<size_t>(n) > options.max_result_bytes + 12) {
      too_large = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (timed_out || too_large || read_error) ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return make_error(ErrorCode::kResourceExhausted, "{}: the sandboxed parser took longer than {} s and was stopped", what,
                      options.timeout_s);
  }
  if (too_large) {
    return make_error(ErrorCode::kResourceExhausted, "{}: the sandboxed parser's result exceeds {} bytes", what,
                      options.max_result_bytes);
  }
  if (read_error) return make_error(ErrorCode::kIo, "{}: cannot read the sandboxed parser's result", what);
  if (WIFSIGNALED(wstatus)) {
    const int sig = WTERMSIG(wstatus);
    if (sig == SIGSYS) {
      return make_error(ErrorCode::kPermissionDenied,
                        "{}: the parser was killed by its sandbox: it attempted a system call outside its allow-list "
                        "(no network, no processes, no files opened, no writes)",
                        what);
    }
    return make_error(ErrorCode::kInternal, "{}: the sandboxed parser crashed (signal {}, {})", what, sig, ::strsignal(sig));
  }
  const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  if (code == kExitNoFilter) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "{}: cannot confine the parser: this kernel refused the seccomp filter (hearth parses untrusted "
                      "files only inside it)",
                      what);
  }
  if (code != 0) return make_error(ErrorCode::kInternal, "{}: the sandboxed parser exited with status {}", what, code);
  uint32_t ecode = 0;
  uint64_t len = 0;
  if (got.size() < sizeof ecode + sizeof len) return make_error(ErrorCode::kInternal, "{}: the sandboxed parser sent no result", what);
  std::memcpy(&ecode, got.data(), sizeof ecode);
  std::memcpy(&len, got.data() + sizeof ecode, sizeof len);
  if (len != got.size() - sizeof ecode - sizeof len || ecode > static_cast<uint32_t>(ErrorCode::kIo)) {
    return make_error(ErrorCode::kInternal, "{}: the sandboxed parser's result is malformed", what);
  }
  std::string body = got.substr(sizeof ecode + sizeof len);
  if (ecode != 0) return Status(static_cast<ErrorCode>(ecode), std::move(body));
  return body;
}

}  // namespace hearth::sandbox
