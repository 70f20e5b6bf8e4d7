// perfwatch's own PostgreSQL cluster: created on first use, reused across restarts, Unix socket
// only, run by an unprivileged user. Needs root (the cluster's user is switched to) and Debian's
// postgresql package.
#include "storage/embedded_postgres.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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

}  // namespace
}  // namespace perfwatch::storage
