// kill -9 at random moments during `hearth pull`, 20 times: after every kill the store must be
// consistent (every blob hashes to its name, every reference reaches a complete model), and a
// final pull must finish, resuming what the killed ones left.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "hearth/registry/registry_server.h"
#include "hearth/trust/model_resolver.h"
#include "registry_process.h"
#include "test_nodes.h"

namespace hearth::registry {
namespace {

using hearth::testing::Node;

pid_t spawn_pull(const std::string& home, const std::string& mirror, const std::string& ref) {
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    setenv("HEARTH_HOME", home.c_str(), 1);
    unsetenv("HEARTH_MIRRORS");
    execl(HEARTH_CLI_PATH, HEARTH_CLI_PATH, "pull", "--mirror", mirror.c_str(), "--limit-rate", "300000", ref.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

TEST(PullKill, KillNineTwentyTimesLeavesTheStoreConsistent) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node node("hearth-kill-src"), peer("hearth-kill-dst");
  auto key = hearth::testing::new_key();
  node.import(model, "acme/stories:v1", 1);
  node.sign("acme/stories:v1", key);
  peer.trust(key, "acme/*");
  RegistryServer server(node.home.string());
  ASSERT_TRUE(server.bind("127.0.0.1", 0).ok());
  std::thread serve([&] { (void)server.serve(); });
  std::string mirror = "http://127.0.0.1:" + std::to_string(server.port());
  ASSERT_TRUE(hearth::testing::wait_http(mirror, 10));

  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_ms(20, 1500);
  int killed_mid_pull = 0;
  for (int i = 0; i < 20; ++i) {
    pid_t pid = spawn_pull(peer.home.string(), mirror, "acme/stories:v1");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    auto check = peer.store->check();
    ASSERT_TRUE(check.ok());
    ASSERT_TRUE(check->ok()) << "after kill " << i << ": " << check->problems.front();
    auto tagged = peer.store->resolve(*store::parse_reference("acme/stories:v1"));
    if (WIFSIGNALED(status)) {
      ++killed_mid_pull;
    } else {
      // It finished before the kill: the model must be complete; reset for the next round.
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "exit " << WEXITSTATUS(status);
      ASSERT_TRUE(tagged.ok());
    }
    if (tagged.ok()) {
      trust::ResolveOptions ro;
      ro.home = peer.home.string();
      ASSERT_TRUE(trust::resolve_model("acme/stories:v1", ro).ok()) << "a visible model must be complete";
      ASSERT_TRUE(peer.store->remove(*store::parse_reference("acme/stories:v1")).ok());
      ASSERT_TRUE(peer.store->gc().ok());
    }
  }
  EXPECT_GE(killed_mid_pull, 10);

  pid_t pid = spawn_pull(peer.home.string(), mirror, "acme/stories:v1");
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  trust::ResolveOptions ro;
  ro.home = peer.home.string();
  auto r = trust::resolve_model("acme/stories:v1", ro);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*store::sha256_file(r->gguf_path()), *store::sha256_file(model.string()));
  EXPECT_TRUE(peer.store->check()->ok());
  server.stop();
  serve.join();
}

}  // namespace
}  // namespace hearth::registry
