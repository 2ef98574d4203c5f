#include "postgres_process.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "registry_process.h"  // free_port

namespace hearth::testing {
namespace {

// The newest /usr/lib/postgresql/<version>/bin (Debian keeps initdb and postgres there).
std::string postgres_bin_dir() {
  std::error_code ec;
  int best = -1;
  std::string out;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string v = e.path().filename().string();
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string bin = e.path().string() + "/bin";
    if (access((bin + "/initdb").c_str(), X_OK) != 0 || access((bin + "/postgres").c_str(), X_OK) != 0) continue;
    if (std::stoi(v) > best) {
      best = std::stoi(v);
      out = bin;
    }
  }
  return out;
}

// fork + (as `pw`, when set) exec; stdout and stderr appended to `log`. Returns the child's pid.
pid_t spawn(const std::vector<std::string>& args, const passwd* pw, const std::string& log) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
  }
  if (pw != nullptr) {
    if (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(126);
    setenv("HOME", pw->pw_dir ? pw->pw_dir : "/", 1);
  }
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

}  // namespace

std::unique_ptr<PostgresServer> PostgresServer::start(std::string* why) {
  const std::string bin = postgres_bin_dir();
  if (bin.empty()) {
    *why = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql; "
           "scripts/setup.sh does it)";
    return nullptr;
  }
  std::unique_ptr<PostgresServer> s(new PostgresServer());
  char tmpl[] = "/tmp/hearth-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    *why = "mkdtemp failed";
    return nullptr;
  }
  s->dir_ = tmpl;
  s->log_ = s->dir_ + "/postgres.log";
  const passwd* pw = nullptr;
  if (geteuid() == 0) {  // PostgreSQL refuses to run as root
    pw = getpwnam("postgres");
    if (pw == nullptr) pw = getpwnam("nobody");
    if (pw == nullptr) {
      *why = "running as root and there is neither a 'postgres' nor a 'nobody' user to run PostgreSQL as";
      return nullptr;
    }
    s->user_ = pw->pw_name;
    if (chown(s->dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      *why = "cannot give " + s->dir_ + " to " + s->user_;
      return nullptr;
    }
  }
  chmod(s->dir_.c_str(), 0700);
  const std::string data = s->dir_ + "/data";
  pid_t init = spawn({bin + "/initdb", "-D", data, "-U", "hearth", "--auth=trust", "-E", "UTF8", "--no-sync",
                      "--no-instructions"},
                     pw, s->log_);
  int status = 0;
  waitpid(init, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = "initdb failed (log: " + s->log_ + ")";
    return nullptr;
  }
  s->port_ = free_port();
  s->pid_ = spawn({bin + "/postgres", "-D", data, "-p", std::to_string(s->port_), "-k", s->dir_, "-c",
                   "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c",
                   "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=40"},
                  pw, s->log_);
  // Up when it answers a connection attempt (not merely when the port opens).
  const std::string probe = s->url("postgres");
  for (int i = 0; i < 300; ++i) {
    if (PQping(probe.c_str()) == PQPING_OK) return s;
    if (waitpid(s->pid_, &status, WNOHANG) == s->pid_) {
      s->pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *why = "postgres did not start on 127.0.0.1:" + std::to_string(s->port_) + " (log: " + s->log_ + ")";
  s->log_.clear();  // keep the directory (and its log) for a look
  return nullptr;
}

std::string PostgresServer::url(const std::string& db) const {
  return "postgresql://hearth@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

bool PostgresServer::create_database(const std::string& name, std::string* why) const {
  if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos) {
    *why = "bad database name";
    return false;
  }
  PGconn* c = PQconnectdb(url("postgres").c_str());
  bool ok = PQstatus(c) == CONNECTION_OK;
  if (ok) {
    PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());  // a checked identifier, not input
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
  }
  if (!ok) *why = PQerrorMessage(c);
  PQfinish(c);
  return ok;
}

void PostgresServer::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGINT);  // fast shutdown: ends the sessions, no waiting for clients
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

PostgresServer::~PostgresServer() {
  stop();
  std::error_code ec;
  if (!dir_.empty() && !log_.empty()) std::filesystem::remove_all(dir_, ec);
}

}  // namespace hearth::testing
