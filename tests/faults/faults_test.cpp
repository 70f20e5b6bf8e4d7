// Fault injection with the real perfwatchd (real BPF) and a real PostgreSQL it reaches as an external
// database (a private cluster this test starts and stops: storage/embedded_postgres.h), each test
// counting what happened and printing its figures ("FIGURES name: key=value ..."), also appended as
// markdown to $PW_FAULT_RESULTS when set (bench/fault_results.md was made so).
//   PW_FAULT_OUTAGE_S  length of the database outage (default 60; the results file has 600)
//   PW_FAULT_STORM_S   length of the exec storm (default 20; the results file has 60)
//   PW_FAULT_STORM_RATE  processes a second (default 1000)
// The clock test steps this machine's wall clock (an hour back, then forward): it runs only with
// PW_FAULT_STEP_CLOCK=1, in a throw-away guest (scripts/kernel-matrix.sh run ... --), and is not
// registered with ctest.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <regex>
#include <sstream>
#include <thread>

#include "storage/embedded_postgres.h"
#include "tests/alerts/receiver.h"
#include "tests/e2e/support.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// What a test counted, printed and kept.
class Figures {
 public:
  explicit Figures(std::string name) : name_(std::move(name)) {}
  template <typename T>
  void add(const std::string& key, const T& value) {
    std::ostringstream s;
    s << value;
    rows_.emplace_back(key, s.str());
  }
  ~Figures() {
    std::string line = "FIGURES " + name_ + ":";
    for (const auto& [k, v] : rows_) line += " " + k + "=" + v;
    std::printf("%s\n", line.c_str());
    if (const char* path = std::getenv("PW_FAULT_RESULTS"); path && *path) {
      std::ofstream out(path, std::ios::app);
      out << "\n### " << name_ << (testing::Test::HasFailure() ? " (FAILED)" : "") << "\n\n| figure | value |\n|---|---|\n";
      for (const auto& [k, v] : rows_) out << "| " << k << " | " << v << " |\n";
    }
  }

 private:
  std::string name_;
  std::vector<std::pair<std::string, std::string>> rows_;
};

bool eventually(const std::function<bool()>& condition, std::chrono::seconds limit) {
  for (auto end = Clock::now() + limit; Clock::now() < end; std::this_thread::sleep_for(200ms))
    if (condition()) return true;
  return condition();
}

// A metric's value on /metrics (the first series of that name), NaN when absent.
double metric(std::uint16_t port, const std::string& name) {
  const auto [status, body] = http_get(port, "/metrics");
  if (status != 200) return std::nan("");
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(name + " ", 0) == 0 || line.rfind(name + "{", 0) == 0)
      return std::stod(line.substr(line.rfind(' ') + 1));
  return std::nan("");
}

std::size_t count_lines(const std::string& log, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
  return n;
}

// /proc/PID: CPU seconds used so far, and resident memory in KiB (VmRSS, or VmHWM: its peak).
double cpu_seconds_of(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) {
      stime = std::stoull(f);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long memory_kib(pid_t pid, const std::string& field) {
  std::istringstream lines(slurp("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

// The database perfwatchd writes to, in a directory of the test's: started, stopped, started again.
class Database {
 public:
  explicit Database(const fs::path& dir) {
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    options_.state_dir = dir.string();
    start();
  }
  void start() { pg_ = storage::EmbeddedPostgres::start(options_); uri_ = pg_->uri(); }
  void stop() { pg_.reset(); }
  const std::string& uri() const { return uri_; }

  // Stored windows of `host`: per window start, how many rows (one per target) and the window's end.
  struct Stored {
    std::int64_t start_us, end_us, rows;
  };
  std::vector<Stored> windows(const std::string& host) const {
    pqxx::connection conn(uri_);
    pqxx::nontransaction tx(conn);
    std::vector<Stored> out;
    for (const auto& row : tx.exec_params(
             "SELECT (extract(epoch FROM w.window_start) * 1e6)::bigint, (extract(epoch FROM max(w.window_end)) * 1e6)::bigint,"
             " count(*) FROM windows w JOIN hosts h ON h.id = w.host_id WHERE h.name = $1"
             " GROUP BY w.window_start ORDER BY w.window_start", host))
      out.push_back({row[0].as<std::int64_t>(), row[1].as<std::int64_t>(), row[2].as<std::int64_t>()});
    return out;
  }
  std::int64_t scalar(const std::string& sql) const {
    pqxx::connection conn(uri_);
    pqxx::nontransaction tx(conn);
    return tx.exec1(sql)[0].as<std::int64_t>();
  }

 private:
  storage::EmbeddedOptions options_;
  std::unique_ptr<storage::EmbeddedPostgres> pg_;
  std::string uri_;
};

std::string unique_host(const std::string& what) { return "faults-" + what + "-" + std::to_string(getpid()); }

// Windows are contiguous while a daemon runs: the gaps between stored windows, each as (end of one,
// start of the next).
std::vector<std::pair<std::int64_t, std::int64_t>> gaps(const std::vector<Database::Stored>& stored) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::size_t i = 1; i < stored.size(); ++i)
    if (stored[i].start_us != stored[i - 1].end_us) out.emplace_back(stored[i - 1].end_us, stored[i].start_us);
  return out;
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The database down for PW_FAULT_OUTAGE_S while a target runs, perfwatchd killed (SIGKILL) half-way
// through and started again: every window closed before the kill is stored once the database is back,
// and none twice.
TEST(Faults, DatabaseDownWithPerfwatchdKilledMidway) {
  const int outage_s = env_int("PW_FAULT_OUTAGE_S", 60);
  const fs::path dir = fs::temp_directory_path() / ("pw-faults-outage-" + std::to_string(getpid()));
  fs::remove_all(dir);
  Database db(dir / "db");
  const std::string host = unique_host("outage");
  const std::uint16_t port = free_port();
  const std::string config = "host: " + host + "\nlog_level: debug\n"
                             "storage:\n  postgres: \"" + db.uri() + "\"\n"
                             "sampling:\n  window: 2s\n"
                             "dashboard:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n"
                             "targets:\n  - name: split\n    match: {cmdline: \"cpu_split duty\"}\n";
  Child load = spawn({CPU_SPLIT_PATH, "duty", std::to_string(outage_s + 120), "20"});
  Figures figures("database down " + std::to_string(outage_s) + " s, perfwatchd SIGKILLed half-way");
  figures.add("outage_s", outage_s);
  {
    Daemon daemon("faults-outage", config);
    ASSERT_TRUE(daemon.started());
    ASSERT_TRUE(eventually([&] { return db.windows(host).size() >= 3; }, 60s)) << daemon.log();

    db.stop();
    const auto down = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(outage_s / 2));
    daemon.kill_hard();
    const std::int64_t killed_us = now_us();
    const std::string first_log = daemon.log();
    const std::size_t closed_first = count_lines(first_log, "msg=\"window closed\"");
    const std::size_t spooled_at_kill = std::distance(fs::directory_iterator(daemon.dir() / "state" / "spool"),
                                                      fs::directory_iterator());
    ASSERT_TRUE(daemon.restart()) << "perfwatchd starts while its database is down";
    std::this_thread::sleep_for(std::chrono::seconds(outage_s) - (Clock::now() - down));
    db.start();
    const auto back = Clock::now();
    ASSERT_TRUE(eventually([&] { return metric(port, "perfwatch_storage_spool_windows") == 0 &&
                                        metric(port, "perfwatch_storage_queue_windows") == 0; }, 300s))
        << daemon.log();
    const double drain_s = std::chrono::duration<double>(Clock::now() - back).count();
    const double dropped = metric(port, "perfwatch_storage_windows_dropped_total");
    ASSERT_EQ(daemon.stop(), 0);  // stores the open window
    const std::size_t closed_second = count_lines(daemon.log().substr(first_log.size()), "msg=\"window closed\"");

    const auto stored = db.windows(host);
    std::size_t before_kill = 0, twice = 0;
    for (const auto& w : stored) {
      if (w.end_us <= killed_us) ++before_kill;
      if (w.rows != 1) ++twice;  // one target: one row per window
    }
    const auto holes = gaps(stored);
    figures.add("windows_closed_before_kill", closed_first);
    figures.add("windows_in_spool_at_kill", spooled_at_kill);
    figures.add("windows_stored_from_before_kill", before_kill);
    figures.add("windows_closed_after_restart", closed_second);
    figures.add("windows_stored_total", stored.size());
    figures.add("windows_stored_twice", twice);
    figures.add("gaps_in_stored_windows", holes.size());
    figures.add("dropped_after_restart", dropped);
    figures.add("drain_after_database_back_s", drain_s);
    EXPECT_EQ(before_kill, closed_first) << "every window closed before the kill is stored";
    EXPECT_EQ(stored.size(), closed_first + closed_second) << "and every later one";
    EXPECT_EQ(twice, 0u);
    ASSERT_EQ(holes.size(), 1u) << "windows are contiguous but for the kill";
    EXPECT_LE(holes[0].first, killed_us);
    EXPECT_EQ(dropped, 0);
  }
  kill(load.pid, SIGKILL);
  wait_exit(load.pid);
  db.stop();
  fs::remove_all(dir);
}

// A small file system mounted for a test (state_dir on it): filled up, then emptied.
struct Tmpfs {
  Tmpfs(const fs::path& at, const std::string& size) : path(at) {
    fs::create_directories(path);
    mounted = ::mount("pw-faults", path.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0755").c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted) ::umount2(path.c_str(), MNT_DETACH);
  }
  // Fills what is left with a file; false if the file system did not fill up.
  bool fill() { return std::system(("dd if=/dev/zero of=" + (path / "filler").string() + " bs=4k 2>/dev/null").c_str()) != 0; }
  void make_room() { fs::remove(path / "filler"); }
  fs::path path;
  bool mounted = false;
};

// The disk of the state directory full while the database is down: perfwatchd keeps running, counts the
// windows it cannot keep, and recovers by itself once there is room again and the database is back.
TEST(Faults, StateDiskFullWhileTheDatabaseIsDown) {
  const fs::path dir = fs::temp_directory_path() / ("pw-faults-disk-" + std::to_string(getpid()));
  fs::remove_all(dir);
  Database db(dir / "db");
  auto disk_owner = std::make_unique<Tmpfs>(dir / "state", "4m");
  Tmpfs& disk = *disk_owner;
  ASSERT_TRUE(disk.mounted);
  const std::string host = unique_host("disk");
  const std::uint16_t port = free_port();
  const std::string config = "host: " + host + "\nlog_level: debug\n"
                             "storage:\n  postgres: \"" + db.uri() + "\"\n"
                             "sampling:\n  window: 1s\n"
                             "dashboard:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n"
                             "targets:\n  - name: split\n    match: {cmdline: \"cpu_split duty\"}\n";
  Child load = spawn({CPU_SPLIT_PATH, "duty", "300", "20"});
  Figures figures("state directory's disk full while the database is down");
  {
    Daemon daemon("faults-disk", config, {}, disk.path.string());
    ASSERT_TRUE(daemon.started());
    ASSERT_TRUE(eventually([&] { return db.windows(host).size() >= 2; }, 60s)) << daemon.log();
    const long rss_before = memory_kib(daemon.pid(), "VmRSS");

    db.stop();
    ASSERT_TRUE(disk.fill());
    const std::size_t log_at_full = daemon.log().size();
    // Ten windows close on a full disk.
    ASSERT_TRUE(eventually([&] { return metric(port, "perfwatch_storage_windows_dropped_total") >= 10; }, 60s))
        << daemon.log().substr(log_at_full);
    ASSERT_TRUE(daemon.alive());
    const double dropped = metric(port, "perfwatch_storage_windows_dropped_total");
    const std::size_t lost_logged = count_lines(daemon.log().substr(log_at_full), "cannot spool window; it is lost");

    disk.make_room();
    const double spooled_before = metric(port, "perfwatch_storage_windows_spooled_total");
    ASSERT_TRUE(eventually([&] { return metric(port, "perfwatch_storage_spool_windows") >= 3; }, 30s))
        << "windows are spooled again once there is room";
    const double dropped_after_room = metric(port, "perfwatch_storage_windows_dropped_total");
    db.start();
    ASSERT_TRUE(eventually([&] { return metric(port, "perfwatch_storage_spool_windows") == 0; }, 120s)) << daemon.log();
    const long rss_after = memory_kib(daemon.pid(), "VmRSS");
    const double spooled_after_room = metric(port, "perfwatch_storage_windows_spooled_total") - spooled_before;
    ASSERT_TRUE(daemon.alive());
    ASSERT_EQ(daemon.stop(), 0);
    const std::size_t closed = count_lines(daemon.log(), "msg=\"window closed\"");
    const auto stored = db.windows(host);

    figures.add("state_dir", "tmpfs 4 MiB, filled");
    figures.add("windows_closed", closed);
    figures.add("windows_dropped_counted", dropped_after_room);
    figures.add("windows_lost_logged", lost_logged);
    figures.add("windows_spooled_after_room", spooled_after_room);
    figures.add("windows_stored", stored.size());
    figures.add("rss_kib_before_after", std::to_string(rss_before) + " -> " + std::to_string(rss_after));
    EXPECT_GE(lost_logged, dropped) << "each lost window is logged";
    EXPECT_EQ(stored.size() + static_cast<std::size_t>(dropped_after_room), closed)
        << "every window is either stored or counted as dropped";
  }
  kill(load.pid, SIGKILL);
  wait_exit(load.pid);
  db.stop();
  disk_owner.reset();
  fs::remove_all(dir);
}

// An exec storm: PW_FAULT_STORM_RATE short-lived processes a second for PW_FAULT_STORM_S, alternating
// between two targets' programs with each child started on the PID the other program's child just
// freed. perfwatchd survives, attributes no sample to the wrong target, and its CPU and memory are
// reported.
TEST(Faults, ExecStormWithPidsReusedAcrossTargets) {
  const int seconds = env_int("PW_FAULT_STORM_S", 20), rate = env_int("PW_FAULT_STORM_RATE", 1000);
  const std::uint16_t port = free_port();
  Daemon daemon("faults-storm", "log_level: info\nsampling:\n  window: 2s\n"
                                "dashboard:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n"
                                "targets:\n"
                                "  - name: storm_a\n    match: {comm: pw_storm_a}\n"
                                "  - name: storm_b\n    match: {comm: pw_storm_b}\n");
  ASSERT_TRUE(daemon.started());
  std::this_thread::sleep_for(3s);  // its idle baseline
  const pid_t pid = daemon.pid();
  const double cpu_idle = cpu_seconds_of(pid);
  std::this_thread::sleep_for(5s);
  const double idle_share = (cpu_seconds_of(pid) - cpu_idle) / 5;
  const long rss_before = memory_kib(pid, "VmRSS");
  const double cpu_before = cpu_seconds_of(pid);
  const auto started = Clock::now();
  Child storm = spawn({EXEC_STORM_PATH, std::to_string(rate), std::to_string(seconds), "8", STORM_A_PATH, STORM_B_PATH},
                      "/dev/null", /*pipe_stdout=*/true);
  // Half-way, `perfwatch targets` shows a few of the storm's PIDs and their count, not every one.
  std::this_thread::sleep_for(std::chrono::seconds(seconds / 2 + 4));
  auto [targets_code, targets] = daemon.cli({"targets", "--since", "6s"});
  const std::string out = read_all(storm.stdout_fd);
  const int code = wait_exit(storm.pid);
  const double wall = std::chrono::duration<double>(Clock::now() - started).count();
  ASSERT_EQ(code, 0) << out;
  const double cpu_share = (cpu_seconds_of(pid) - cpu_before) / wall;
  const long rss_after = memory_kib(pid, "VmRSS"), rss_peak = memory_kib(pid, "VmHWM");
  ASSERT_TRUE(daemon.alive()) << daemon.log();
  long spawned = 0, reused = 0;
  std::sscanf(out.c_str(), "spawned %ld reused %ld", &spawned, &reused);
  wait_for_windows(6s);

  const std::string since = std::to_string(seconds + 60) + "s";
  const Folded a(daemon.folded("storm_a", since)), b(daemon.folded("storm_b", since));
  ASSERT_EQ(targets_code, 0);
  Figures figures("exec storm: " + std::to_string(rate) + "/s for " + std::to_string(seconds) + " s, PIDs reused across targets");
  figures.add("processes_spawned", spawned);
  figures.add("spawn_rate_per_s", static_cast<double>(spawned) / wall);
  figures.add("pid_reuses_across_targets", reused);
  figures.add("samples_storm_a", a.total);
  figures.add("samples_storm_b", b.total);
  figures.add("storm_a_samples_in_storm_b_work", a.inclusive.count("storm_b_work") ? a.inclusive.at("storm_b_work") : 0);
  figures.add("storm_b_samples_in_storm_a_work", b.inclusive.count("storm_a_work") ? b.inclusive.at("storm_a_work") : 0);
  figures.add("perfwatchd_cpu_share_idle", idle_share);
  figures.add("perfwatchd_cpu_share_storm", cpu_share);
  figures.add("perfwatchd_rss_kib", std::to_string(rss_before) + " -> " + std::to_string(rss_after) + " (peak " +
                                        std::to_string(rss_peak) + ")");
  std::smatch row;
  figures.add("targets_storm_a_row", std::regex_search(targets, row, std::regex("storm_a [^\n]*")) ? row.str() : "-");
  figures.add("process_events", metric(port, "perfwatch_process_events_total"));
  figures.add("process_events_dropped", metric(port, "perfwatch_process_events_dropped_total"));
  figures.add("processes_matched", metric(port, "perfwatch_processes_matched_total"));
  figures.add("pid_reuses_seen", metric(port, "perfwatch_pid_reuses_total"));
  figures.add("samples_lost_unresolved", metric(port, "perfwatch_samples_lost_total{reason=\"unresolved\"}"));
  // The rate reached depends on the machine's spare CPU (a figure above); a storm it must be.
  EXPECT_GE(static_cast<double>(spawned) / wall, 100.0) << "processes a second";
  EXPECT_GT(reused, spawned / 4) << "PIDs were reused across the two programs";
  EXPECT_GT(a.inclusive.count("storm_a_work"), 0u) << daemon.folded("storm_a", since);
  EXPECT_GT(b.inclusive.count("storm_b_work"), 0u);
  EXPECT_EQ(a.inclusive.count("storm_b_work"), 0u) << "storm_b's samples attributed to storm_a";
  EXPECT_EQ(b.inclusive.count("storm_a_work"), 0u) << "storm_a's samples attributed to storm_b";
  EXPECT_TRUE(std::regex_search(targets, std::regex(R"(storm_a +\S+ +[0-9]+,[0-9]+,[0-9]+,\.\.\. \([0-9]+\) )")))
      << targets;
  EXPECT_LT(targets.size(), 1000u) << targets;
}

void send_udp(std::uint16_t port, const std::string& datagram) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  ::close(fd);
}

// A webhook receiver that takes the connection and answers a byte a second, listed first: the other
// receiver's notification of the same alert still goes out at once, and the slow one's request ends at
// its timeout and is retried.
TEST(Faults, AWebhookReceiverAnsweringAByteASecond) {
  test::TricklingReceiver slow;
  test::WebhookReceiver ok;
  const std::uint16_t statsd = free_port(SOCK_DGRAM);
  Daemon daemon("faults-webhook",
                "log_level: info\nsampling:\n  window: 1s\n"
                "statsd:\n  listen: 127.0.0.1:" + std::to_string(statsd) + "\n"
                "dashboard:\n  listen: 127.0.0.1:" + std::to_string(free_port()) + "\n"
                "alerts:\n  evaluation_interval: 1s\n  tier: {for: 0s}\n"
                "  burn_rate: {enabled: false}\n  regression: {enabled: false}\n"
                "  receivers:\n"
                "    - {name: slow, url: \"" + slow.url() + "\", timeout: 20s}\n"
                "    - {name: ok, url: \"" + ok.url() + "\", timeout: 20s}\n"
                "targets:\n  - name: app\n    match: {comm: pw_faults_none}\n"
                "    operations:\n      - {name: render, tier: T1, statsd: app.render}\n");
  ASSERT_TRUE(daemon.started());
  const auto violated = Clock::now();
  for (int i = 0; i < 50; ++i) send_udp(statsd, "app.render:800|ms");  // T1 is 100 ms
  ASSERT_TRUE(slow.wait_accepted(1, 30000ms)) << daemon.log();
  const double slow_accepted_s = std::chrono::duration<double>(Clock::now() - violated).count();
  ASSERT_EQ(ok.wait_for(1, 30000ms).size(), 1u) << daemon.log();
  const double ok_delivered_s = std::chrono::duration<double>(Clock::now() - violated).count();
  ASSERT_TRUE(eventually([&] { return daemon.log().find("no complete answer within 20s") != std::string::npos; }, 40s))
      << daemon.log();
  const double slow_ended_s = std::chrono::duration<double>(Clock::now() - violated).count();

  Figures figures("webhook receiver answering a byte a second, beside a normal one");
  figures.add("slow_receiver_connection_after_s", slow_accepted_s);
  figures.add("other_receiver_delivered_after_s", ok_delivered_s);
  figures.add("slow_request_given_up_after_s", slow_ended_s);
  figures.add("slow_receiver_timeout_s", 20);
  EXPECT_LT(ok_delivered_s, slow_accepted_s + 5) << "the other receiver is not held by the slow one";
  EXPECT_LT(slow_ended_s, slow_accepted_s + 25) << "the timeout bounds the whole request";
  EXPECT_NE(daemon.log().find("msg=\"notification not delivered; retrying\" receiver=slow"), std::string::npos) << daemon.log();
}

// Steps this machine's wall clock, undone however the test ends.
class ClockStep {
 public:
  void step(std::chrono::seconds by) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_sec += by.count();
    ASSERT_EQ(clock_settime(CLOCK_REALTIME, &now), 0) << std::strerror(errno);
    stepped_ += by;
  }
  ~ClockStep() {
    if (stepped_.count() == 0) return;
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_sec -= stepped_.count();
    clock_settime(CLOCK_REALTIME, &now);
  }

 private:
  std::chrono::seconds stepped_{0};
};

// The wall clock stepped an hour back, then an hour forward: windows continue at their length, and
// none is recorded negative or an hour long. Steps the clock of the machine it runs on.
TEST(Faults, ClockSteppedAnHourBackAndForward) {
  ASSERT_STREQ(std::getenv("PW_FAULT_STEP_CLOCK"), "1")
      << "steps the wall clock: run it in a throw-away guest with PW_FAULT_STEP_CLOCK=1, e.g.\n"
         "  scripts/kernel-matrix.sh run 6.12 -- env PW_FAULT_STEP_CLOCK=1 build/tests/faults/faults_test "
         "--gtest_filter='*Clock*'";
  const std::string host = unique_host("clock");
  Daemon daemon("faults-clock", "host: " + host + "\nlog_level: debug\nsampling:\n  window: 2s\n"
                                "dashboard:\n  listen: 127.0.0.1:" + std::to_string(free_port()) + "\n"
                                "targets:\n  - name: split\n    match: {cmdline: \"cpu_split duty\"}\n");
  ASSERT_TRUE(daemon.started());
  ClockStep clock;
  const std::size_t at_start = daemon.log().size();
  const auto start = Clock::now();
  std::this_thread::sleep_for(10s);
  clock.step(-1h);
  std::this_thread::sleep_for(10s);
  clock.step(1h);
  std::this_thread::sleep_for(10s);
  const double ran_s = std::chrono::duration<double>(Clock::now() - start).count();
  const std::size_t closed = count_lines(daemon.log().substr(at_start), "msg=\"window closed\"");
  const std::size_t steps_seen = count_lines(daemon.log().substr(at_start), "the wall clock was stepped");
  // Read while perfwatchd (and so its embedded PostgreSQL) runs.
  auto uri = storage::embedded_uri((daemon.dir() / "state").string());
  ASSERT_TRUE(uri.ok()) << uri.error().message;
  pqxx::connection conn(*uri);
  const auto stored_lengths = [&] {
    pqxx::nontransaction tx(conn);
    std::vector<double> out;
    for (const auto& row : tx.exec("SELECT extract(epoch FROM window_end - window_start)::float8 FROM windows"
                                    " ORDER BY window_start"))
      out.push_back(row[0].as<double>());
    return out;
  };
  std::vector<double> lengths;
  ASSERT_TRUE(eventually([&] { return (lengths = stored_lengths()).size() >= closed; }, 60s)) << lengths.size();
  ASSERT_EQ(daemon.stop(), 0);
  Figures figures("wall clock stepped an hour back, then forward (2 s windows)");
  figures.add("seconds_run", ran_s);
  figures.add("windows_closed", closed);
  figures.add("steps_detected", steps_seen);
  figures.add("shortest_window_s", lengths.empty() ? 0 : *std::min_element(lengths.begin(), lengths.end()));
  figures.add("longest_window_s", lengths.empty() ? 0 : *std::max_element(lengths.begin(), lengths.end()));
  std::ostringstream all;
  for (double l : lengths) all << (all.tellp() > 0 ? " " : "") << std::fixed << std::setprecision(2) << l;
  figures.add("window_lengths_s", all.str());
  EXPECT_GE(closed, static_cast<std::size_t>(ran_s / 2) - 2) << "windows keep closing every 2 s";
  EXPECT_LE(closed, static_cast<std::size_t>(ran_s / 2) + 2);
  EXPECT_EQ(steps_seen, 2u);
  // Half a window to 2.5 windows: a window is armed after the last one's work, which an emulated
  // guest makes slow; a step, before the fix, made one an hour long or negative.
  for (double l : lengths) {
    EXPECT_GT(l, 1.0);
    EXPECT_LT(l, 5.0);
  }
}

}  // namespace
}  // namespace perfwatch::e2e
