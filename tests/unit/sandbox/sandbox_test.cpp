// The parser sandbox: results and errors come back from the confined child; every forbidden
// kind of call (network, process creation, opening a file, writing elsewhere) kills the child
// and is reported as the sandbox's refusal; crashes and endless loops are contained.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "hearth/sandbox/sandbox.h"

namespace hearth::sandbox {
namespace {

// Under ASan/UBSan the runtime's own crash and exception paths make system calls (pipe2 to
// probe memory) that the filter forbids: there a crash or a throw is still contained, but it
// shows as the sandbox's kill rather than as the signal or the message.
constexpr bool kSanitized = kSanitizerBuild;

bool killed_by_sandbox(const Status& s) { return s.message().find("killed by its sandbox") != std::string::npos; }

// Unset the test hook for the tests that do not set it themselves.
class Sandbox : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("HEARTH_SANDBOX_TEST_HOOK"); }
  void TearDown() override { ::unsetenv("HEARTH_SANDBOX_TEST_HOOK"); }
};

void expect_killed(const Result<std::string>& r) {
  ASSERT_FALSE(r.ok()) << "the forbidden call was allowed";
  EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied) << r.status().to_string();
  EXPECT_NE(r.status().message().find("killed by its sandbox"), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find("parsing x"), std::string::npos) << r.status().to_string();
}

TEST_F(Sandbox, ReturnsTheResultAndErrorsOfTheWork) {
  // Memory work inside the child (allocation, big buffers) is allowed.
  auto r = run_confined("parsing x", [] {
    std::string s(5 << 20, 'a');
    s += "end";
    return Result<std::string>(s.substr(s.size() - 4));
  });
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "aend");

  auto e = run_confined("parsing x", [] { return Result<std::string>(Status(ErrorCode::kDataLoss, "bad magic")); });
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), ErrorCode::kDataLoss);
  EXPECT_EQ(e.status().message(), "bad magic");

  auto empty = run_confined("parsing x", [] { return Result<std::string>(std::string()); });
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_EQ(*empty, "");
}

TEST_F(Sandbox, ReadsWhatWasOpenedBeforehand) {
  const std::string path = ::testing::TempDir() + "/sandbox_read.txt";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("hello from the file", f);
    std::fclose(f);
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto r = run_confined("parsing x", [fd] {
    char buf[64] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    return Result<std::string>(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0));
  });
  ::close(fd);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "hello from the file");
}

TEST_F(Sandbox, ForbiddenCallsKillTheChild) {
  expect_killed(run_confined("parsing x", [] {
    (void)::socket(AF_INET, SOCK_STREAM, 0);
    return Result<std::string>(std::string("network was allowed"));
  }));
  expect_killed(run_confined("parsing x", [] {
    const pid_t p = ::fork();
    if (p == 0) ::_exit(0);
    return Result<std::string>(std::string("fork was allowed"));
  }));
  const std::string target = ::testing::TempDir() + "/sandbox_must_not_exist";
  std::filesystem::remove(target);
  expect_killed(run_confined("parsing x", [&target] {
    (void)::open(target.c_str(), O_WRONLY | O_CREAT, 0600);
    return Result<std::string>(std::string("open was allowed"));
  }));
  EXPECT_FALSE(std::filesystem::exists(target));
  expect_killed(run_confined("parsing x", [] {
    (void)::open("/etc/hostname", O_RDONLY);  // not even reading a new file
    return Result<std::string>(std::string("open for reading was allowed"));
  }));
  expect_killed(run_confined("parsing x", [] {
    (void)!::write(1, "leak", 4);
    return Result<std::string>(std::string("writing to stdout was allowed"));
  }));
}

TEST_F(Sandbox, TheTestHookMakesTheChildAttemptAForbiddenCall) {
  for (const char* hook : {"socket", "fork", "open", "write"}) {
    ::setenv("HEARTH_SANDBOX_TEST_HOOK", hook, 1);
    auto r = run_confined("parsing x", [] { return Result<std::string>(std::string("ok")); });
    SCOPED_TRACE(hook);
    expect_killed(r);
  }
  ::unsetenv("HEARTH_SANDBOX_TEST_HOOK");
  EXPECT_TRUE(run_confined("parsing x", [] { return Result<std::string>(std::string("ok")); }).ok());
}

TEST_F(Sandbox, CrashesTimeoutsAndHugeResultsAreContained) {
  auto crash = run_confined("parsing x", []() -> Result<std::string> {
    std::raise(SIGSEGV);
    return std::string("survived");
  });
  ASSERT_FALSE(crash.ok());
  if (!(kSanitized && killed_by_sandbox(crash.status()))) {
    EXPECT_EQ(crash.status().code(), ErrorCode::kInternal);
    EXPECT_NE(crash.status().message().find("crashed (signal 11"), std::string::npos) << crash.status().to_string();
  }

  ConfineOptions quick;
  quick.timeout_s = 0.5;
  auto loop = run_confined("parsing x", []() -> Result<std::string> {
    volatile uint64_t n = 0;
    for (;;) n = n + 1;
  }, quick);
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(loop.status().message().find("longer than 0.5 s"), std::string::npos) << loop.status().to_string();

  ConfineOptions small;
  small.max_result_bytes = 1000;
  auto big = run_confined("parsing x", [] { return Result<std::string>(std::string(200000, 'z')); }, small);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), ErrorCode::kResourceExhausted);

  auto thrown = run_confined("parsing x", []() -> Result<std::string> { throw std::runtime_error("boom"); });
  ASSERT_FALSE(thrown.ok());
  if (!(kSanitized && killed_by_sandbox(thrown.status()))) {
    EXPECT_EQ(thrown.status().message(), "boom");
  }
}

}  // namespace
}  // namespace hearth::sandbox
