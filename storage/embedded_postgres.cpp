#include "storage/embedded_postgres.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/nontransaction>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/log.h"
#include "storage/conninfo.h"

namespace perfwatch::storage {
namespace {

namespace fs = std::filesystem;

constexpr const char* pg_root = "/usr/lib/postgresql";
constexpr const char* install_hint = "install the PostgreSQL server (apt-get install postgresql) or set storage.postgres";

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error("embedded PostgreSQL: " + message); }

bool has_server_binaries(const fs::path& bindir) {
  for (const char* name : {"initdb", "pg_ctl", "postgres"})
    if (::access((bindir / name).c_str(), X_OK) != 0) return false;
  return true;
}

std::string read_first_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The cluster's own major version when it exists (a newer server cannot open it), else the newest.
std::string find_bindir(const std::string& configured, const fs::path& data_dir) {
  if (!configured.empty()) {
    if (!has_server_binaries(configured)) fail("no initdb, pg_ctl and postgres in " + configured + "; " + install_hint);
    return configured;
  }
  std::string cluster_version = read_first_line(data_dir / "PG_VERSION");
  if (!cluster_version.empty() && has_server_binaries(fs::path(pg_root) / cluster_version / "bin"))
    return (fs::path(pg_root) / cluster_version / "bin").string();
  int newest = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(pg_root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    if (has_server_binaries(entry.path() / "bin")) newest = std::max(newest, std::stoi(name));
  }
  if (newest < 0) fail(std::string("no PostgreSQL server binaries under ") + pg_root + "/<version>/bin; " + install_hint);
  if (!cluster_version.empty())
    fail("the cluster in " + data_dir.string() + " is PostgreSQL " + cluster_version +
         " but only newer server binaries are installed; install postgresql-" + cluster_version +
         " or upgrade the cluster with pg_upgrade");
  return (fs::path(pg_root) / std::to_string(newest) / "bin").string();
}

// postgresql.conf string literal.
std::string conf_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out.push_back(c);
    out.push_back(c);
  }
  return out + "'";
}

void write_file(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  if (!out.flush()) fail("cannot write " + path.string());
}

// While alive, this thread reaches files as the server's user (fsuid/fsgid, which are per thread). The
// cluster's directories belong to that user and are private to it: root would need CAP_DAC_OVERRIDE
// and CAP_FOWNER, which the systemd unit does not grant, to write there as itself.
class AsUser {
 public:
  AsUser(uid_t uid, gid_t gid, bool active) : active_(active) {
    if (!active_) return;
    old_gid_ = static_cast<gid_t>(::setfsgid(gid));
    old_uid_ = static_cast<uid_t>(::setfsuid(uid));
  }
  ~AsUser() {
    if (!active_) return;
    ::setfsuid(old_uid_);
    ::setfsgid(old_gid_);
  }
  AsUser(const AsUser&) = delete;
  AsUser& operator=(const AsUser&) = delete;

 private:
  bool active_;
  uid_t old_uid_ = 0;
  gid_t old_gid_ = 0;
};

std::string tail_of_file(const std::string& path, std::size_t max_bytes = 2000) {
  std::ifstream in(path, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return content.size() > max_bytes ? content.substr(content.size() - max_bytes) : content;
}

}  // namespace

std::unique_ptr<EmbeddedPostgres> EmbeddedPostgres::start(const EmbeddedOptions& options) {
  if (options.state_dir.empty()) fail("state_dir is empty");
  std::unique_ptr<EmbeddedPostgres> pg(new EmbeddedPostgres());
  pg->prepare_directories(options.state_dir);
  pg->bindir_ = find_bindir(options.bindir, pg->data_dir_);
  if (!fs::exists(fs::path(pg->data_dir_) / "PG_VERSION")) pg->init_cluster();
  pg->write_settings();
  if (pg->adopt_running_server()) {
    pg->running_ = true;
    pg->wait_until_ready(options.start_timeout);
  } else {
    pg->start_server(options.start_timeout);
  }
  pg->uri_ = pg->uri_for(options.database);
  pg->ensure_database(options.database);
  log::info("embedded PostgreSQL ready", {{"data_dir", pg->data_dir_}, {"socket_dir", pg->socket_dir_},
                                          {"user", pg->run_as_.name}, {"bindir", pg->bindir_}});
  return pg;
}

EmbeddedPostgres::~EmbeddedPostgres() { stop(); }

std::string EmbeddedPostgres::uri_for(std::string_view database) const {
  return socket_uri(socket_dir_, run_as_.name, database);
}

std::string socket_uri(std::string_view socket_dir, std::string_view user, std::string_view database) {
  return "postgresql:///" + uri_encode(database) + "?host=" + uri_encode(socket_dir) + "&user=" + uri_encode(user);
}

Result<std::string> embedded_uri(const std::string& state_dir, std::string_view database) {
  const fs::path socket_dir = fs::absolute(state_dir) / "postgres" / "run";
  struct stat st {};
  if (::stat(socket_dir.c_str(), &st) != 0)
    return make_error("no embedded PostgreSQL under " + state_dir + " (" + socket_dir.string() + ": " +
                      std::strerror(errno) + "); is perfwatchd running with this state_dir?");
  if (::access((socket_dir / ".s.PGSQL.5432").c_str(), F_OK) != 0)
    return make_error("perfwatchd's embedded PostgreSQL is not running (no socket in " + socket_dir.string() + ")");
  const passwd* pw = ::getpwuid(st.st_uid);
  return socket_uri(socket_dir.string(), pw ? pw->pw_name : std::to_string(st.st_uid), database);
}

void EmbeddedPostgres::prepare_directories(const std::string& state_dir) {
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("perfwatch");
    if (!pw) pw = ::getpwnam("postgres");
    if (!pw)
      fail("PostgreSQL refuses to run as root and there is no 'perfwatch' or 'postgres' user to run it as; "
           "create one (useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin perfwatch) or " +
           std::string(install_hint));
    run_as_ = {pw->pw_name, pw->pw_uid, pw->pw_gid, true};
  } else {
    const passwd* pw = ::getpwuid(::geteuid());
    run_as_ = {pw ? pw->pw_name : std::to_string(::geteuid()), ::geteuid(), ::getegid(), false};
  }

  root_dir_ = (fs::absolute(state_dir) / "postgres").string();
  data_dir_ = root_dir_ + "/data";
  socket_dir_ = root_dir_ + "/run";
  log_file_ = root_dir_ + "/server.log";
  // sockaddr_un.sun_path holds 108 bytes, including the ".s.PGSQL.5432" name and the NUL.
  if (socket_dir_.size() + sizeof("/.s.PGSQL.5432") > 108)
    fail("socket directory path " + socket_dir_ + " is too long for a Unix socket; use a shorter state_dir");

  std::error_code ec;
  fs::create_directories(state_dir, ec);
  fs::create_directory(root_dir_, ec);
  if (ec) fail("cannot create " + root_dir_ + ": " + ec.message());
  give_to_server_user(root_dir_);
  {
    AsUser as_server(run_as_.uid, run_as_.gid, run_as_.switch_user);
    fs::create_directory(socket_dir_, ec);
    if (ec) fail("cannot create " + socket_dir_ + ": " + ec.message());
  }
  give_to_server_user(socket_dir_);
  try {
    run_pg("/usr/bin/test", {"-w", root_dir_, "-a", "-x", root_dir_}, "access check");
  } catch (const std::runtime_error&) {
    fail("user " + run_as_.name + " cannot reach " + root_dir_ + "; make " + state_dir +
         " and its parent directories searchable by it (chmod o+x)");
  }
}

// Private to the server's user: the directory is the only access control of the socket in it (trust
// auth). Changing the mode needs ownership (or CAP_FOWNER): take the directory, set it, give it away.
void EmbeddedPostgres::give_to_server_user(const std::string& dir) const {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) fail("cannot stat " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) fail(dir + " is not a directory");
  if (st.st_uid == run_as_.uid && st.st_gid == run_as_.gid && (st.st_mode & 07777) == 0700) return;
  if (::chown(dir.c_str(), ::geteuid(), ::getegid()) != 0 || ::chmod(dir.c_str(), 0700) != 0 ||
      ::chown(dir.c_str(), run_as_.uid, run_as_.gid) != 0)
    fail("cannot give " + dir + " to user " + run_as_.name + ": " + std::strerror(errno));
}

void EmbeddedPostgres::init_cluster() {
  AsUser as_server(run_as_.uid, run_as_.gid, run_as_.switch_user);
  // initdb into a scratch directory and rename it, so a crash mid-initdb leaves no half cluster.
  const std::string scratch = data_dir_ + ".initdb";
  fs::remove_all(scratch);
  run_pg(bindir_ + "/initdb",
         {"-D", scratch, "-U", run_as_.name, "--locale=C", "--encoding=UTF8", "--auth-local=trust",
          "--auth-host=reject"},
         "initdb");
  // Only the Unix socket, which only the server's user and root can reach; no TCP rules at all.
  write_file(scratch + "/pg_hba.conf", "# written by perfwatch\nlocal all all trust\n");
  std::ofstream(scratch + "/postgresql.conf", std::ios::app) << "\ninclude_if_exists = 'perfwatch.conf'\n";
  fs::rename(scratch, data_dir_);
  log::info("created embedded PostgreSQL cluster", {{"data_dir", data_dir_}});
}

// Rewritten at every start so that moving state_dir keeps the socket path right.
// The socket itself is open to all (0777): perfwatchd connects as root without CAP_DAC_OVERRIDE under its
// unit, and only the server's user and root can pass the 0700 directories above it.
void EmbeddedPostgres::write_settings() {
  AsUser as_server(run_as_.uid, run_as_.gid, run_as_.switch_user);
  write_file(data_dir_ + "/perfwatch.conf",
             "# written by perfwatchd at every start\n"
             "listen_addresses = ''\n"
             "unix_socket_directories = " + conf_quote(socket_dir_) + "\n"
             "unix_socket_permissions = 0777\n");
}

// A postmaster.pid whose process is not a server running in this data directory is stale (a
// crash, then a reboot that reused the pid): remove it, which PostgreSQL does not always do itself.
bool EmbeddedPostgres::adopt_running_server() {
  const fs::path pid_file = fs::path(data_dir_) / "postmaster.pid";
  if (server_pid() > 0) {
    log::info("adopting the embedded PostgreSQL server left running", {{"pid", server_pid()}});
    return true;
  }
  AsUser as_server(run_as_.uid, run_as_.gid, run_as_.switch_user);
  std::error_code ec;
  if (fs::remove(pid_file, ec)) log::warn("removed a stale postmaster.pid", {{"data_dir", data_dir_}});
  // No server of ours runs, so socket lock files left in the private socket directory are stale too.
  for (const auto& entry : fs::directory_iterator(socket_dir_, ec)) fs::remove(entry.path(), ec);
  return false;
}

pid_t EmbeddedPostgres::server_pid() const {
  const std::string line = read_first_line(data_dir_ + "/postmaster.pid");
  const pid_t pid = line.empty() ? -1 : static_cast<pid_t>(std::atoi(line.c_str()));
  if (pid <= 0) return -1;
  std::error_code ec;
  const fs::path cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
  if (ec || !fs::equivalent(cwd, data_dir_, ec)) return -1;
  return pid;
}

void EmbeddedPostgres::start_server(std::chrono::seconds timeout) {
  try {
    run_pg(bindir_ + "/pg_ctl",
           {"start", "-D", data_dir_, "-l", log_file_, "-w", "-t", std::to_string(timeout.count()), "-s"},
           "pg_ctl start");
  } catch (const std::runtime_error& e) {
    fail(std::string(e.what()) + "\nserver log " + log_file_ + ":\n" + tail_of_file(log_file_));
  }
  running_ = true;
}

void EmbeddedPostgres::wait_until_ready(std::chrono::seconds timeout) {
  const std::string conninfo = uri_for("postgres");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (PQping(conninfo.c_str()) != PQPING_OK) {
    if (std::chrono::steady_clock::now() > deadline)
      fail("the server did not accept connections within " + std::to_string(timeout.count()) + "s; see " + log_file_);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void EmbeddedPostgres::ensure_database(const std::string& database) {
  try {
    pqxx::connection conn(uri_for("postgres"));
    pqxx::nontransaction tx(conn);
    if (tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", database).empty())
      tx.exec0("CREATE DATABASE " + tx.quote_name(database));
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() != "42P04") fail("cannot create database " + database + ": " + e.what());  // 42P04: exists
  } catch (const std::exception& e) {
    fail("cannot connect to create database " + database + ": " + e.what());
  }
}

void EmbeddedPostgres::stop() {
  if (!running_) return;
  running_ = false;
  try {
    run_pg(bindir_ + "/pg_ctl", {"stop", "-D", data_dir_, "-m", "fast", "-w", "-s"}, "pg_ctl stop");
    log::info("embedded PostgreSQL stopped", {{"data_dir", data_dir_}});
  } catch (const std::runtime_error& e) {
    log::error("cannot stop embedded PostgreSQL", {{"error", e.what()}});
  }
}

// Runs `program` as the server's user: fork, drop privileges, exec; no shell, a clean environment,
// no inherited descriptors or blocked signals (the server outlives this call). Throws with the
// program's output when it fails.
void EmbeddedPostgres::run_pg(const std::string& program, std::vector<std::string> args, const std::string& what) {
  args.insert(args.begin(), program);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string home = "HOME=" + root_dir_;
  char path_env[] = "PATH=/usr/bin:/bin";
  char lc_env[] = "LC_ALL=C";
  char* envp[] = {path_env, lc_env, home.data(), nullptr};

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) fail(what + ": pipe: " + std::strerror(errno));
  const pid_t child = ::fork();
  if (child < 0) fail(what + ": fork: " + std::strerror(errno));
  if (child == 0) {
    // Only async-signal-safe calls from here on.
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::signal(s, SIG_DFL);
    if (run_as_.switch_user &&
        (::setgroups(1, &run_as_.gid) != 0 || ::setgid(run_as_.gid) != 0 || ::setuid(run_as_.uid) != 0)) {
      static constexpr char msg[] = "cannot switch to the PostgreSQL user\n";
      (void)!::write(2, msg, sizeof msg - 1);
      ::_exit(126);
    }
    if (::chdir(root_dir_.c_str()) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp);
    static constexpr char msg[] = "exec failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(out[1]);
  std::string output;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n > 0) output.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ostringstream message;
    message << what << " failed (" << program << " as " << run_as_.name << ", "
            << (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status)) : "killed by a signal")
            << ")" << (output.empty() ? "" : ":\n" + output);
    throw std::runtime_error(message.str());
  }
  if (!output.empty()) log::debug("embedded PostgreSQL command output", {{"command", what}, {"output", output}});
}

}  // namespace perfwatch::storage
