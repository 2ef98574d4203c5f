// Full disk during `hearth pull`: an LD_PRELOAD shim makes writes into the store fail with
// ENOSPC part-way. The pull must fail with a clear message, leave the store consistent and
// the model invisible, and a later pull (disk freed) must resume and finish.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "hearth/registry/registry_server.h"
#include "registry_process.h"
#include "test_nodes.h"

namespace hearth::registry {
namespace {

using hearth::testing::Node;

// Runs `hearth pull`; returns the exit status and fills `err` with stderr.
int run_pull(const std::string& home, const std::string& mirror, bool shim, std::string* err) {
  std::string err_path = home + "/pull.err";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    setenv("HEARTH_HOME", home.c_str(), 1);
    if (shim) {
      setenv("LD_PRELOAD", HEARTH_ENOSPC_SHIM, 1);
      setenv("HEARTH_ENOSPC_DIR", (home + "/store").c_str(), 1);
      setenv("HEARTH_ENOSPC_AFTER", "100000", 1);
    }
    execl(HEARTH_CLI_PATH, HEARTH_CLI_PATH, "pull", "--mirror", mirror.c_str(), "acme/stories:v1",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  *err = read_file(err_path).value_or("");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST(FullDisk, PullFailsCleanlyAndResumesLater) {
  HEARTH_REQUIRE_SHARED(shared);
  Node node("hearth-disk-src"), peer("hearth-disk-dst");
  auto key = hearth::testing::new_key();
  node.import(shared / "models/stories260K-Q8_0.gguf", "acme/stories:v1", 1);
  node.sign("acme/stories:v1", key);
  peer.trust(key, "acme/*");
  RegistryServer server(node.home.string());
  ASSERT_TRUE(server.bind("127.0.0.1", 0).ok());
  std::thread serve([&] { (void)server.serve(); });
  std::string mirror = "http://127.0.0.1:" + std::to_string(server.port());
  ASSERT_TRUE(hearth::testing::wait_http(mirror, 10));

  std::string err;
  int code = run_pull(peer.home.string(), mirror, /*shim=*/true, &err);
  EXPECT_EQ(code, 1) << err;
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_NE(err.find("free space and retry"), std::string::npos) << err;
  auto check = peer.store->check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok());
  EXPECT_FALSE(peer.store->resolve(*store::parse_reference("acme/stories:v1")).ok());

  uint64_t before = server.blob_bytes_served();
  code = run_pull(peer.home.string(), mirror, /*shim=*/false, &err);
  EXPECT_EQ(code, 0) << err;
  EXPECT_TRUE(peer.store->resolve(*store::parse_reference("acme/stories:v1")).ok());
  EXPECT_TRUE(peer.store->check()->ok());
  // The retry resumed: it fetched less than the whole model.
  EXPECT_LT(server.blob_bytes_served() - before, 379168u);
  server.stop();
  serve.join();
}

}  // namespace
}  // namespace hearth::registry
