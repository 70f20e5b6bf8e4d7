// perfwatch's own PostgreSQL cluster: created on first use, reused across restarts, Unix socket
// only, run by an unprivileged user. Needs root (the cluster's user is switched to) and Debian's
// postgresql package.
#include "storage/embedded_postgres.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>

namespace perfwatch::storage {
namespace {

namespace fs = std::filesystem;

class EmbeddedPostgresTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the embedded cluster tests run as root (as perfwatchd does)";
    state_dir_ = fs::temp_directory_path() / ("pw-embedded-" + std::to_string(getpid()));
    fs::remove_all(state_dir_);
    fs::create_directories(state_dir_);
    fs::permissions(state_dir_, fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
  }
  void TearDown() override { fs::remove_all(state_dir_); }
  fs::path state_dir_;
};

// Alive and not a zombie (the postmaster's parent is whatever reaps orphans here, maybe nothing).
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

uid_t owner_of_process(pid_t pid) {
  struct stat st {};
  stat(("/proc/" + std::to_string(pid)).c_str(), &st);
  return st.st_uid;
}

TEST_F(EmbeddedPostgresTest, CreatesReusesAndStopsItsCluster) {
  EmbeddedOptions options;
  options.state_dir = state_dir_.string();
  pid_t first_pid = -1;
  {
    auto pg = EmbeddedPostgres::start(options);
    first_pid = pg->server_pid();
    ASSERT_GT(first_pid, 0);
    EXPECT_NE(owner_of_process(first_pid), 0u) << "PostgreSQL must not run as root";
    pqxx::connection conn(pg->uri());
    pqxx::nontransaction tx(conn);
    EXPECT_EQ(tx.exec1("SHOW listen_addresses")[0].as<std::string>(), "") << "no TCP port";
    EXPECT_EQ(tx.exec1("SELECT current_database()")[0].as<std::string>(), "perfwatch");
    tx.exec0("CREATE TABLE kept (v int)");
    tx.exec0("INSERT INTO kept VALUES (42)");
    auto client = embedded_uri(state_dir_.string());
    ASSERT_TRUE(client.ok()) << client.error().message;
    EXPECT_EQ(*client, pg->uri()) << "the CLI finds the cluster from state_dir alone";
    struct stat st {};
    ASSERT_EQ(stat(pg->socket_dir().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u) << "only the server's user (and root) may reach the socket";
  }
  EXPECT_FALSE(running(first_pid)) << "stopped when its owner goes";
  EXPECT_FALSE(embedded_uri(state_dir_.string()).ok());

  auto again = EmbeddedPostgres::start(options);
  pqxx::connection conn(again->uri());
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec1("SELECT v FROM kept")[0].as<int>(), 42) << "the cluster is reused across restarts";
}

TEST_F(EmbeddedPostgresTest, AdoptsAServerLeftRunningByACrashedDaemon) {
  EmbeddedOptions options;
  options.state_dir = state_dir_.string();
  auto first = EmbeddedPostgres::start(options);
  const pid_t pid = first->server_pid();
  // Simulate a crash: the object goes without stopping its server.
  auto second = EmbeddedPostgres::start(options);
  EXPECT_EQ(second->server_pid(), pid);
  pqxx::connection conn(second->uri());
  EXPECT_TRUE(conn.is_open());
  second->stop();
  EXPECT_EQ(first->server_pid(), -1);
  first->stop();  // already stopped: logs, does not throw
}

TEST_F(EmbeddedPostgresTest, AStalePidFileDoesNotBlockStart) {
  EmbeddedOptions options;
  options.state_dir = state_dir_.string();
  std::string data_dir;
  {
    auto pg = EmbeddedPostgres::start(options);
    data_dir = pg->data_dir();
  }
  // A pid file naming a process that is not our server (pid 1), as after a reboot.
  std::ofstream(data_dir + "/postmaster.pid") << "1\n" << data_dir << "\n";
  auto pg = EmbeddedPostgres::start(options);
  EXPECT_GT(pg->server_pid(), 1);
}

// The capabilities systemd/perfwatchd.service's CapabilityBoundingSet names, as a capset() mask.
std::uint64_t unit_capabilities() {
#define PW_CAP(name) {#name, name}
  static const std::map<std::string, int> known{
      PW_CAP(CAP_CHOWN),      PW_CAP(CAP_DAC_OVERRIDE), PW_CAP(CAP_DAC_READ_SEARCH), PW_CAP(CAP_FOWNER),
      PW_CAP(CAP_FSETID),     PW_CAP(CAP_KILL),         PW_CAP(CAP_SETGID),          PW_CAP(CAP_SETUID),
      PW_CAP(CAP_SETPCAP),    PW_CAP(CAP_NET_ADMIN),    PW_CAP(CAP_NET_BIND_SERVICE), PW_CAP(CAP_IPC_LOCK),
      PW_CAP(CAP_SYS_PTRACE), PW_CAP(CAP_SYS_ADMIN),    PW_CAP(CAP_SYS_RESOURCE),    PW_CAP(CAP_PERFMON),
      PW_CAP(CAP_BPF)};
#undef PW_CAP
  std::ifstream unit(PERFWATCH_UNIT_FILE);
  std::uint64_t mask = 0;
  for (std::string line; std::getline(unit, line);) {
    if (line.rfind("CapabilityBoundingSet=", 0) != 0) continue;
    std::istringstream names(line.substr(line.find('=') + 1));
    for (std::string name; names >> name;) {
      auto it = known.find(name);
      EXPECT_NE(it, known.end()) << "unknown capability in the unit: " << name;
      if (it != known.end()) mask |= std::uint64_t{1} << it->second;
    }
  }
  EXPECT_NE(mask, 0u) << "no CapabilityBoundingSet in " << PERFWATCH_UNIT_FILE;
  return mask;
}

// Root with only `caps` (bounding, permitted and effective sets; those this process has) and no_new_privs,
// as the unit runs perfwatchd.
bool restrict_to(std::uint64_t caps) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  for (int i = 0; i < 2; ++i) {
    data[i].effective = data[i].permitted = data[i].permitted & static_cast<std::uint32_t>(caps >> (32 * i));
    data[i].inheritable = 0;
  }
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
    if (!(caps >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return false;
  return syscall(SYS_capset, &header, data) == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

// Under the shipped unit root has neither CAP_DAC_OVERRIDE nor CAP_FOWNER: the cluster must still be
// created in a state directory as systemd's StateDirectory= makes it (root's, 0711), started, reached
// by perfwatchd over its socket, stopped and started again.
TEST_F(EmbeddedPostgresTest, StartsWithOnlyTheSystemdUnitsCapabilities) {
  fs::permissions(state_dir_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  const std::uint64_t caps = unit_capabilities();
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    dup2(out[1], STDERR_FILENO);
    if (!restrict_to(caps)) {
      std::fprintf(stderr, "cannot drop capabilities: %s\n", std::strerror(errno));
      _exit(2);
    }
    try {
      EmbeddedOptions options;
      options.state_dir = state_dir_.string();
      for (int start = 0; start < 2; ++start) {
        auto pg = EmbeddedPostgres::start(options);
        pqxx::connection conn(pg->uri());
        pqxx::nontransaction tx(conn);
        tx.exec0("CREATE TABLE IF NOT EXISTS kept (v int)");
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      _exit(1);
    }
    _exit(0);
  }
  close(out[1]);
  std::string errors;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) errors.append(buf, static_cast<std::size_t>(n));
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << errors;
}

}  // namespace
}  // namespace perfwatch::storage
