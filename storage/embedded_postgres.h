#pragma once
// perfwatchd's own PostgreSQL cluster, used when the config names no external database.
// It lives under <state_dir>/postgres (data/, run/ for the Unix socket, server.log), runs as an
// unprivileged user (PostgreSQL refuses root), listens on no TCP port and trusts only its private
// Unix socket directory, which only that user (and root) can enter.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "common/result.h"

namespace perfwatch::storage {

// libpq URI of `database` on a cluster listening in socket_dir, as `user`.
std::string socket_uri(std::string_view socket_dir, std::string_view user, std::string_view database);

// For clients such as the CLI: the URI of the embedded cluster perfwatchd runs under state_dir.
// Its user is the owner of the socket directory. Fails, saying why, when no server listens there.
Result<std::string> embedded_uri(const std::string& state_dir, std::string_view database = "perfwatch");

struct EmbeddedOptions {
  std::string state_dir;  // the cluster lives in <state_dir>/postgres
  std::string bindir;     // initdb/pg_ctl/postgres; empty: /usr/lib/postgresql/<version>/bin, the
                          // cluster's own version if it exists, else the newest installed
  std::string user;       // OS user running the server; empty: "perfwatch" if it exists, else "postgres"
  std::string database = "perfwatch";
  std::chrono::seconds start_timeout{60};
};

class EmbeddedPostgres {
 public:
  // Creates the cluster on first use (initdb), starts it, or adopts the server a crashed daemon
  // left running, and creates the database if missing. Throws std::runtime_error naming what to
  // install or fix when it cannot.
  static std::unique_ptr<EmbeddedPostgres> start(const EmbeddedOptions& options);

  EmbeddedPostgres(const EmbeddedPostgres&) = delete;
  EmbeddedPostgres& operator=(const EmbeddedPostgres&) = delete;
  ~EmbeddedPostgres();  // stop()

  // libpq URI of the database: postgresql:///perfwatch?host=<socket dir>&user=<user>.
  const std::string& uri() const { return uri_; }
  // The same for another database of the cluster (e.g. "postgres" for administration).
  std::string uri_for(std::string_view database) const;
  const std::string& data_dir() const { return data_dir_; }
  const std::string& socket_dir() const { return socket_dir_; }
  const std::string& log_file() const { return log_file_; }
  // The postmaster's pid, or -1 when it is not running.
  pid_t server_pid() const;

  // pg_ctl stop -m fast. Idempotent; failures are logged.
  void stop();

 private:
  struct RunAs {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    bool switch_user = false;  // false when perfwatch itself runs unprivileged
  };

  EmbeddedPostgres() = default;
  void prepare_directories(const std::string& state_dir);
  void give_to_server_user(const std::string& dir) const;
  void init_cluster();
  void write_settings();
  bool adopt_running_server();
  void start_server(std::chrono::seconds timeout);
  void wait_until_ready(std::chrono::seconds timeout);
  void ensure_database(const std::string& database);
  void run_pg(const std::string& program, std::vector<std::string> args, const std::string& what);

  RunAs run_as_;
  std::string bindir_;
  std::string root_dir_;
  std::string data_dir_;
  std::string socket_dir_;
  std::string log_file_;
  std::string uri_;
  bool running_ = false;
};

}  // namespace perfwatch::storage
