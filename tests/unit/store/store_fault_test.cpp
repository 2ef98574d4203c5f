// Full-disk fault injection: a child process runs with RLIMIT_FSIZE so writes fail (EFBIG,
// with SIGXFSZ ignored) part-way, like a full disk; the store must report a clear error and
// stay consistent.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "hearth/store/store.h"
#include "shared_data.h"

namespace hearth::store {
namespace {

namespace fs = std::filesystem;

TEST(StoreFault, FullDiskDuringIngestLeavesStoreConsistent) {
  fs::path home = testing::make_temp_dir("hearth-fault");
  fs::path src = home / "big.bin";
  {
    std::ofstream f(src, std::ios::binary);
    std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 4; ++i) f << chunk;
  }
  {
    auto s = Store::open(home.string());
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->put_blob("small", "text/plain").ok());
  }
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {1 << 20, 1 << 20};  // files may not grow past 1 MiB
    setrlimit(RLIMIT_FSIZE, &rl);
    auto s = Store::open(home.string());
    auto r = s->ingest_file(src.string(), "application/octet-stream");
    int code = r.ok() ? 0 : static_cast<int>(r.status().code());
    std::string msg = r.ok() ? "" : r.status().message();
    (void)!write(pipefd[1], msg.data(), msg.size());
    _exit(code);
  }
  close(pipefd[1]);
  char buf[512] = {0};
  ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), static_cast<int>(ErrorCode::kResourceExhausted)) << std::string(buf, n > 0 ? n : 0);
  EXPECT_NE(std::string(buf).find("free space"), std::string::npos) << buf;
  auto s = Store::open(home.string());
  auto check = s->check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok());
  EXPECT_EQ(check->blobs_checked, 1u);
  // No temp debris is left behind.
  EXPECT_TRUE(fs::is_empty(home / "store/tmp"));
  fs::remove_all(home);
}

}  // namespace
}  // namespace hearth::store
