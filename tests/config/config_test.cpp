#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace perfwatch::config {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string example_path = PERFWATCH_SOURCE_DIR "/config/perfwatch.example.yaml";

// The error message of a document that must be rejected.
std::string errors_of(std::string_view yaml) {
  Result<Config> result = parse(yaml, "perfwatch.yaml");
  EXPECT_FALSE(result.ok()) << "accepted:\n" << yaml;
  return result.ok() ? std::string() : result.error().message;
}

Config valid(std::string_view yaml) {
  Result<Config> result = parse(yaml, "perfwatch.yaml");
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  return result.ok() ? std::move(result).value() : Config{};
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string hostname() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

TEST(ConfigDefaults, EmptyDocumentKeepsEveryDefault) {
  for (std::string_view text : {"", "# only a comment\n", "\n\n"}) {
    const Config c = valid(text);
    EXPECT_EQ(c.source, "perfwatch.yaml");
    EXPECT_EQ(c.state_dir, "/var/lib/perfwatch");
    EXPECT_EQ(c.host, hostname());
    EXPECT_EQ(c.log_level, log::Level::info);
    EXPECT_EQ(c.storage.postgres, "");
    EXPECT_EQ(c.storage.password_file, "");
    EXPECT_EQ(c.storage.retention, 14 * 24h);
    EXPECT_EQ(c.storage.spool_max_bytes, 256ull << 20);
    EXPECT_EQ(c.sampling.frequency_hz, 99u);
    EXPECT_EQ(c.sampling.window, 10s);
    EXPECT_EQ(c.sampling.python_max_depth, 64u);
    EXPECT_EQ(c.dashboard.listen, "127.0.0.1:7460");
    EXPECT_EQ(c.dashboard.token_file, "");
    EXPECT_EQ(c.dashboard.threads, 8u);
    EXPECT_EQ(c.dashboard.queue, 64u);
    EXPECT_FALSE(c.dashboard.allow_unauthenticated);
    EXPECT_EQ(c.dashboard.request_timeout, 30s);
    EXPECT_EQ(c.dashboard.query_timeout, 20s);
    EXPECT_EQ(c.tiers, (std::array<Duration, tier_count>{100ms, 500ms, 2s, 5s, 10s}));
    EXPECT_TRUE(c.targets.empty());
  }
}

TEST(ConfigDefaults, EmptySectionsKeepTheirDefaults) {
  const Config c = valid("storage:\nsampling: {}\ntargets: []\ntiers:\n");
  EXPECT_EQ(c.storage.retention, 14 * 24h);
  EXPECT_EQ(c.sampling.frequency_hz, 99u);
  EXPECT_TRUE(c.targets.empty());
}

TEST(ConfigParse, FullFile) {
  const Config c = valid(R"(
state_dir: /srv/perfwatch
host: web-01
log_level: debug
storage:
  postgres: "postgresql://perfwatch@db.example.com:5432/perfwatch?sslmode=require"
  password_file: /etc/perfwatch/pgpassword
  retention: 30d
  spool_max: 1GB
sampling:
  frequency_hz: 49
  window: 1m
  python_max_depth: 128
dashboard:
  listen: "[::1]:8080"
  token_file: /etc/perfwatch/dashboard.token
  threads: 16
  queue: 128
tiers:
  T1: 50ms
  T4: 4s
targets:
  - name: api
    match:
      systemd_unit: kb-api.service
      cmdline: "gunicorn .*kb_api"
    profile: false
    python: off
  - name: worker.v2
    match: {pid: 4242, comm: python3.11, exe: /usr/bin/python3.11, cgroup: /system.slice/worker.service}
    python: on
  - name: batch
    match: {comm: batch}
    python: auto
)");
  EXPECT_EQ(c.state_dir, "/srv/perfwatch");
  EXPECT_EQ(c.host, "web-01");
  EXPECT_EQ(c.log_level, log::Level::debug);
  EXPECT_EQ(c.storage.postgres, "postgresql://perfwatch@db.example.com:5432/perfwatch?sslmode=require");
  EXPECT_EQ(c.storage.password_file, "/etc/perfwatch/pgpassword");
  EXPECT_EQ(c.storage.retention, 30 * 24h);
  EXPECT_EQ(c.storage.spool_max_bytes, 1ull << 30);
  EXPECT_EQ(c.sampling.frequency_hz, 49u);
  EXPECT_EQ(c.sampling.window, 1min);
  EXPECT_EQ(c.sampling.python_max_depth, 128u);
  EXPECT_EQ(c.dashboard.listen, "[::1]:8080");
  EXPECT_EQ(c.dashboard.token_file, "/etc/perfwatch/dashboard.token");
  EXPECT_EQ(c.dashboard.threads, 16u);
  EXPECT_EQ(c.dashboard.queue, 128u);
  EXPECT_EQ(c.tiers, (std::array<Duration, tier_count>{50ms, 500ms, 2s, 4s, 10s}));
  ASSERT_EQ(c.targets.size(), 3u);
  EXPECT_EQ(c.targets[0].python, PythonMode::off);
  EXPECT_EQ(c.targets[1].python, PythonMode::on);
  EXPECT_EQ(c.targets[2].python, PythonMode::auto_detect);
  EXPECT_EQ(c.targets[0].name, "api");
  EXPECT_EQ(c.targets[0].match.systemd_unit, "kb-api.service");
  EXPECT_EQ(c.targets[0].match.cmdline, "gunicorn .*kb_api");
  EXPECT_FALSE(c.targets[0].match.pid);
  EXPECT_FALSE(c.targets[0].profile);
  const Match& m = c.targets[1].match;
  EXPECT_EQ(c.targets[1].name, "worker.v2");
  EXPECT_EQ(m.pid, 4242);
  EXPECT_EQ(m.comm, "python3.11");
  EXPECT_EQ(m.exe, "/usr/bin/python3.11");
  EXPECT_EQ(m.cgroup, "/system.slice/worker.service");
  EXPECT_FALSE(m.cmdline);
  EXPECT_TRUE(c.targets[1].profile);
}

TEST(ConfigParse, AcceptedVariants) {
  EXPECT_EQ(valid("storage: {postgres: 'host=db user=perfwatch dbname=perfwatch'}").storage.postgres,
            "host=db user=perfwatch dbname=perfwatch");
  EXPECT_EQ(valid("storage: {spool_max: 1MB}").storage.spool_max_bytes, 1ull << 20);
  EXPECT_EQ(valid("storage: {retention: 1h}").storage.retention, 1h);
  EXPECT_EQ(valid("sampling: {window: 1h}").sampling.window, 1h);
  EXPECT_EQ(valid("sampling: {frequency_hz: 10000}").sampling.frequency_hz, 10000u);
  for (std::string_view listen : {"localhost:7460", "127.0.0.2:80", "[::1]:1"})
    EXPECT_EQ(valid("dashboard: {listen: '" + std::string(listen) + "'}").dashboard.listen, listen);
  // Reachable from other machines: with a token, or when told that anyone may read the profiles.
  for (std::string_view listen : {"0.0.0.0:1", "[::]:65535", "perf-01.example.com:80", "10.0.0.1:7460"}) {
    EXPECT_EQ(valid("dashboard: {listen: '" + std::string(listen) + "', token_file: /etc/pw.token}").dashboard.listen,
              listen);
    EXPECT_TRUE(valid("dashboard: {listen: '" + std::string(listen) + "', allow_unauthenticated: true}")
                    .dashboard.allow_unauthenticated);
  }
  EXPECT_EQ(valid("dashboard: {request_timeout: 1h, query_timeout: 100ms}").dashboard.request_timeout, 1h);
  EXPECT_EQ(valid("targets: [{name: a, match: {comm: abcdefghijklmno}}]").targets[0].match.comm, "abcdefghijklmno");
  EXPECT_EQ(valid("log_level: error").log_level, log::Level::error);
}

// One bad value per document: the whole message is a single line naming file:line:column and the key.
struct BadValue {
  const char* name;
  const char* yaml;
  const char* expected;
};
void PrintTo(const BadValue& value, std::ostream* out) { *out << value.name; }

class ConfigRejects : public ::testing::TestWithParam<BadValue> {};

TEST_P(ConfigRejects, NamesPositionKeyAndProblem) { EXPECT_EQ(errors_of(GetParam().yaml), GetParam().expected); }

INSTANTIATE_TEST_SUITE_P(
    EveryCheck, ConfigRejects,
    ::testing::Values(
        BadValue{"top_level_not_mapping", "- a\n", "perfwatch.yaml:1:1: expected a mapping, got a sequence"},
        BadValue{"second_document", "log_level: info\n---\nlog_level: warn\n",
                 "perfwatch.yaml:2:1: expected a single YAML document, found another"},
        // Found by fuzz_config: yaml-cpp's LoadAll never returned on it, growing without bound.
        BadValue{"lone_comma", ",", "perfwatch.yaml:1:1: expected a single YAML document, found another"},
        BadValue{"relative_state_dir", "state_dir: var/lib/perfwatch\n",
                 "perfwatch.yaml:1:12: state_dir: expected an absolute path, got 'var/lib/perfwatch'"},
        BadValue{"state_dir_not_scalar", "state_dir: [a]\n",
                 "perfwatch.yaml:1:12: state_dir: expected a string, got a sequence"},
        BadValue{"empty_value_points_at_key", "state_dir:\nlog_level: info\n",
                 "perfwatch.yaml:1:1: state_dir: expected a string, got nothing"},
        BadValue{"empty_host", "host: ''\n", "perfwatch.yaml:1:7: host: must not be empty"},
        BadValue{"log_level", "log_level: verbose\n",
                 "perfwatch.yaml:1:12: log_level: expected one of debug, info, warn, error, got 'verbose'"},
        BadValue{"storage_not_mapping", "storage: 5\n", "perfwatch.yaml:1:10: storage: expected a mapping, got '5'"},
        BadValue{"password_in_uri", "storage:\n  postgres: postgresql://perfwatch:hunter2@db/perfwatch\n",
                 "perfwatch.yaml:2:13: storage.postgres: must not contain a password; put it in the file named by "
                 "storage.password_file or in the PGPASSWORD environment variable"},
        BadValue{"password_in_uri_query", "storage: {postgres: 'postgresql://db/perfwatch?password=hunter2'}\n",
                 "perfwatch.yaml:1:21: storage.postgres: must not contain a password; put it in the file named by "
                 "storage.password_file or in the PGPASSWORD environment variable"},
        BadValue{"password_in_conninfo", "storage: {postgres: 'host=db password = hunter2'}\n",
                 "perfwatch.yaml:1:21: storage.postgres: must not contain a password; put it in the file named by "
                 "storage.password_file or in the PGPASSWORD environment variable"},
        BadValue{"invalid_conninfo", "storage: {postgres: 'host=db colour=blue'}\n",
                 "perfwatch.yaml:1:21: storage.postgres: invalid PostgreSQL connection string: invalid connection "
                 "option \"colour\""},
        BadValue{"relative_password_file", "storage: {password_file: pgpassword}\n",
                 "perfwatch.yaml:1:26: storage.password_file: expected an absolute path, got 'pgpassword'"},
        BadValue{"short_retention", "storage:\n  retention: 30m\n",
                 "perfwatch.yaml:2:14: storage.retention: must be at least 1h, got 30m"},
        BadValue{"retention_unit", "storage:\n  retention: 2w\n",
                 "perfwatch.yaml:2:14: storage.retention: unknown duration unit in '2w' (use us, ms, s, m, h or d)"},
        BadValue{"small_spool", "storage: {spool_max: 512KB}\n",
                 "perfwatch.yaml:1:22: storage.spool_max: must be at least 1MB, got 512KB"},
        BadValue{"spool_not_size", "storage: {spool_max: lots}\n",
                 "perfwatch.yaml:1:22: storage.spool_max: expected a size such as 512KB, 256MB or 1GB (units B, KB, "
                 "MB, GB, TB), got 'lots'"},
        BadValue{"frequency_zero", "sampling:\n  frequency_hz: 0\n",
                 "perfwatch.yaml:2:17: sampling.frequency_hz: must be from 1 to 10000, got 0"},
        BadValue{"frequency_high", "sampling:\n  frequency_hz: 10001\n",
                 "perfwatch.yaml:2:17: sampling.frequency_hz: must be from 1 to 10000, got 10001"},
        BadValue{"frequency_not_integer", "sampling:\n  frequency_hz: 99.5\n",
                 "perfwatch.yaml:2:17: sampling.frequency_hz: expected an integer, got '99.5'"},
        BadValue{"short_window", "sampling: {window: 500ms}\n",
                 "perfwatch.yaml:1:20: sampling.window: must be at least 1s, got 500ms"},
        BadValue{"long_window", "sampling: {window: 2h}\n",
                 "perfwatch.yaml:1:20: sampling.window: must be at most 1h, got 2h"},
        BadValue{"window_not_duration", "sampling: {window: soon}\n",
                 "perfwatch.yaml:1:20: sampling.window: expected a duration such as 250ms, 2s, 10m or 14d, got "
                 "'soon'"},
        BadValue{"listen_without_port", "dashboard:\n  listen: 127.0.0.1\n",
                 "perfwatch.yaml:2:11: dashboard.listen: expected HOST:PORT such as 127.0.0.1:7460 or [::1]:7460, "
                 "got '127.0.0.1'"},
        BadValue{"relative_token_file", "dashboard: {token_file: token.txt}\n",
                 "perfwatch.yaml:1:25: dashboard.token_file: expected an absolute path, got 'token.txt'"},
        BadValue{"dashboard_threads_zero", "dashboard: {threads: 0}\n",
                 "perfwatch.yaml:1:22: dashboard.threads: must be from 1 to 256, got 0"},
        BadValue{"dashboard_queue_high", "dashboard: {queue: 5000}\n",
                 "perfwatch.yaml:1:20: dashboard.queue: must be from 1 to 4096, got 5000"},
        BadValue{"listen_open_without_token", "dashboard:\n  listen: 0.0.0.0:7460\n",
                 "perfwatch.yaml:2:11: dashboard.listen: 0.0.0.0:7460 can be reached from other machines: set "
                 "dashboard.token_file, or dashboard.allow_unauthenticated: true to let anyone who reaches it read "
                 "the profiles"},
        BadValue{"listen_name_without_token", "dashboard: {listen: 'perf.example.com:80', allow_unauthenticated: no}\n",
                 "perfwatch.yaml:1:21: dashboard.listen: perf.example.com:80 can be reached from other machines: set "
                 "dashboard.token_file, or dashboard.allow_unauthenticated: true to let anyone who reaches it read "
                 "the profiles"},
        BadValue{"allow_unauthenticated_not_bool", "dashboard: {allow_unauthenticated: maybe}\n",
                 "perfwatch.yaml:1:36: dashboard.allow_unauthenticated: expected a boolean, got 'maybe'"},
        BadValue{"request_timeout_short", "dashboard: {request_timeout: 500ms}\n",
                 "perfwatch.yaml:1:30: dashboard.request_timeout: must be at least 1s, got 500ms"},
        BadValue{"query_timeout_long", "dashboard: {query_timeout: 2h}\n",
                 "perfwatch.yaml:1:28: dashboard.query_timeout: must be at most 1h, got 2h"},
        BadValue{"listen_port_zero", "dashboard: {listen: '127.0.0.1:0'}\n",
                 "perfwatch.yaml:1:21: dashboard.listen: port must be a number from 1 to 65535, got '0'"},
        BadValue{"listen_port_high", "dashboard: {listen: '127.0.0.1:65536'}\n",
                 "perfwatch.yaml:1:21: dashboard.listen: port must be a number from 1 to 65535, got '65536'"},
        BadValue{"listen_bad_ipv4", "dashboard: {listen: '300.0.0.1:80'}\n",
                 "perfwatch.yaml:1:21: dashboard.listen: invalid IPv4 address '300.0.0.1'"},
        BadValue{"listen_bad_ipv6", "dashboard: {listen: '[::g]:80'}\n",
                 "perfwatch.yaml:1:21: dashboard.listen: invalid IPv6 address '[::g]'"},
        BadValue{"listen_bare_ipv6", "dashboard: {listen: '::1:80'}\n",
                 "perfwatch.yaml:1:21: dashboard.listen: put an IPv6 address in brackets, e.g. [::1]:7460"},
        BadValue{"listen_bad_hostname", "dashboard: {listen: 'my_host:80'}\n",
                 "perfwatch.yaml:1:21: dashboard.listen: invalid host name 'my_host'"},
        BadValue{"listen_no_host", "dashboard: {listen: ':80'}\n",
                 "perfwatch.yaml:1:21: dashboard.listen: missing host; use 0.0.0.0 or [::] to listen on every "
                 "interface"},
        BadValue{"tier_not_increasing", "tiers:\n  T1: 100ms\n  T2: 100ms\n",
                 "perfwatch.yaml:3:7: tiers.T2: T2 (100ms) must be longer than T1 (100ms)"},
        BadValue{"tier_above_default_next", "tiers:\n  T2: 3s\n",
                 "perfwatch.yaml:2:7: tiers.T2: T3 (2s) must be longer than T2 (3s)"},
        BadValue{"tier_zero", "tiers: {T1: 0ms}\n", "perfwatch.yaml:1:13: tiers.T1: must be at least 1us, got 0ms"},
        BadValue{"tiers_not_mapping", "tiers: [1s, 2s]\n",
                 "perfwatch.yaml:1:8: tiers: expected a mapping, got a sequence"},
        BadValue{"targets_not_sequence", "targets: {name: a}\n",
                 "perfwatch.yaml:1:10: targets: expected a sequence, got a mapping"},
        BadValue{"target_not_mapping", "targets:\n  - api\n",
                 "perfwatch.yaml:2:5: targets[0]: expected a mapping, got 'api'"},
        BadValue{"target_without_name", "targets:\n  - match: {pid: 1}\n",
                 "perfwatch.yaml:2:5: targets[0]: missing required key 'name'"},
        BadValue{"target_without_match", "targets:\n  - name: api\n",
                 "perfwatch.yaml:2:5: targets[0]: missing required key 'match'"},
        BadValue{"match_empty", "targets:\n  - name: api\n    match: {}\n",
                 "perfwatch.yaml:3:12: targets[0].match: must set at least one of pid, comm, exe, cmdline, "
                 "systemd_unit, cgroup"},
        BadValue{"match_null", "targets:\n  - name: api\n    match:\n",
                 "perfwatch.yaml:3:5: targets[0].match: must set at least one of pid, comm, exe, cmdline, "
                 "systemd_unit, cgroup"},
        BadValue{"match_not_mapping", "targets:\n  - name: api\n    match: api\n",
                 "perfwatch.yaml:3:12: targets[0].match: expected a mapping, got 'api'"},
        BadValue{"bad_name", "targets:\n  - name: my api\n    match: {pid: 1}\n",
                 "perfwatch.yaml:2:11: targets[0].name: must be made of letters, digits, '_', '.' and '-', got 'my "
                 "api'"},
        BadValue{"duplicate_name", "targets:\n  - {name: api, match: {pid: 1}}\n  - {name: api, match: {pid: 2}}\n",
                 "perfwatch.yaml:3:12: targets[1].name: duplicate target name 'api' (first used on line 2)"},
        BadValue{"pid_zero", "targets:\n  - name: a\n    match: {pid: 0}\n",
                 "perfwatch.yaml:3:18: targets[0].match.pid: must be from 1 to 2147483647, got 0"},
        BadValue{"pid_not_integer", "targets:\n  - name: a\n    match: {pid: one}\n",
                 "perfwatch.yaml:3:18: targets[0].match.pid: expected an integer, got 'one'"},
        BadValue{"comm_too_long", "targets:\n  - name: a\n    match: {comm: abcdefghijklmnop}\n",
                 "perfwatch.yaml:3:19: targets[0].match.comm: is 16 bytes but the kernel truncates comm to 15; use "
                 "its first 15 bytes or match by exe or cmdline"},
        BadValue{"relative_exe", "targets:\n  - name: a\n    match: {exe: python3}\n",
                 "perfwatch.yaml:3:18: targets[0].match.exe: expected an absolute path, got 'python3'"},
        BadValue{"empty_cmdline", "targets:\n  - name: a\n    match: {cmdline: ''}\n",
                 "perfwatch.yaml:3:22: targets[0].match.cmdline: must not be empty (it would match every process)"},
        BadValue{"unit_without_suffix", "targets:\n  - name: a\n    match: {systemd_unit: kb-api}\n",
                 "perfwatch.yaml:3:27: targets[0].match.systemd_unit: expected a unit name ending in .service, "
                 ".scope, .slice, .socket, .mount, .timer, .target, .path, .swap, .device or .automount, got "
                 "'kb-api'"},
        BadValue{"unit_only_suffix", "targets:\n  - name: a\n    match: {systemd_unit: .service}\n",
                 "perfwatch.yaml:3:27: targets[0].match.systemd_unit: expected a unit name ending in .service, "
                 ".scope, .slice, .socket, .mount, .timer, .target, .path, .swap, .device or .automount, got "
                 "'.service'"},
        BadValue{"relative_cgroup", "targets:\n  - name: a\n    match: {cgroup: system.slice}\n",
                 "perfwatch.yaml:3:21: targets[0].match.cgroup: expected a cgroup path starting with '/', such as "
                 "/system.slice/app.service, got 'system.slice'"},
        BadValue{"profile_not_bool", "targets:\n  - name: a\n    match: {pid: 1}\n    profile: maybe\n",
                 "perfwatch.yaml:4:14: targets[0].profile: expected a boolean, got 'maybe'"},
        BadValue{"python_mode", "targets:\n  - name: a\n    match: {pid: 1}\n    python: yes\n",
                 "perfwatch.yaml:4:13: targets[0].python: expected one of auto, on, off, got 'yes'"},
        BadValue{"python_depth_zero", "sampling:\n  python_max_depth: 0\n",
                 "perfwatch.yaml:2:21: sampling.python_max_depth: must be from 1 to 128, got 0"},
        BadValue{"python_depth_too_deep", "sampling:\n  python_max_depth: 129\n",
                 "perfwatch.yaml:2:21: sampling.python_max_depth: must be from 1 to 128, got 129"},
        BadValue{"unknown_top_key_suggested", "stroage: {}\n",
                 "perfwatch.yaml:1:1: stroage: unknown key 'stroage' (did you mean 'storage'?)"},
        BadValue{"unknown_nested_key_suggested", "sampling:\n  frequency: 99\n",
                 "perfwatch.yaml:2:3: sampling.frequency: unknown key 'frequency' (known keys: frequency_hz, "
                 "window, python_max_depth)"},
        BadValue{"unknown_tier_suggested", "tiers: {t1: 1ms}\n",
                 "perfwatch.yaml:1:9: tiers.t1: unknown key 't1' (did you mean 'T1'?)"},
        BadValue{"unknown_match_key_suggested", "targets:\n  - name: a\n    match: {pid: 1, cmd_line: x}\n",
                 "perfwatch.yaml:3:21: targets[0].match.cmd_line: unknown key 'cmd_line' (did you mean 'cmdline'?)"},
        BadValue{"unknown_target_key_listed", "targets:\n  - name: a\n    match: {pid: 1}\n    enabled: true\n",
                 "perfwatch.yaml:4:5: targets[0].enabled: unknown key 'enabled' (known keys: name, match, profile, "
                 "python, operations, caches)"},
        BadValue{"operations_not_sequence", "targets:\n  - name: a\n    match: {pid: 1}\n    operations: 5\n",
                 "perfwatch.yaml:4:17: targets[0].operations: expected a sequence, got '5'"},
        BadValue{"operation_without_name", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {tier: T1, syscall: read}\n",
                 "perfwatch.yaml:5:9: targets[0].operations[0]: missing required key 'name'"},
        BadValue{"operation_bad_name", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: 'a b', tier: T1, syscall: read}\n",
                 "perfwatch.yaml:5:16: targets[0].operations[0].name: must be made of letters, digits, '_', '.' and "
                 "'-', got 'a b'"},
        BadValue{"operation_bad_tier", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T6, syscall: read}\n",
                 "perfwatch.yaml:5:25: targets[0].operations[0].tier: expected one of T1, T2, T3, T4, T5, got 'T6'"},
        BadValue{"operation_bad_threshold", "targets:\n  - name: x\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, threshold: 0us, syscall: read}\n",
                 "perfwatch.yaml:5:30: targets[0].operations[0].threshold: must be at least 1us, got 0us"},
        BadValue{"operation_tier_and_threshold", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, threshold: 1s, syscall: read}\n",
                 "perfwatch.yaml:5:9: targets[0].operations[0]: set tier or threshold, not both"},
        BadValue{"operation_without_tier", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, syscall: read}\n",
                 "perfwatch.yaml:5:9: targets[0].operations[0]: missing 'tier' (T1..T5) or 'threshold'"},
        BadValue{"operation_without_source", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1}\n",
                 "perfwatch.yaml:5:9: targets[0].operations[0]: missing the source: one of uprobe, python, syscall, "
                 "statsd"},
        BadValue{"operation_two_sources", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, syscall: read, statsd: m}\n",
                 "perfwatch.yaml:5:9: targets[0].operations[0]: set exactly one source, not both syscall and statsd"},
        BadValue{"uprobe_without_symbol", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, uprobe: /usr/bin/app}\n",
                 "perfwatch.yaml:5:37: targets[0].operations[0].uprobe: expected BINARY:SYMBOL such as "
                 "/usr/bin/app:handle_request or libc.so.6:malloc, got '/usr/bin/app'"},
        BadValue{"uprobe_relative_binary", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, uprobe: 'bin/app:f'}\n",
                 "perfwatch.yaml:5:37: targets[0].operations[0].uprobe: the binary must be an absolute path or a file "
                 "name without '/', got 'bin/app'"},
        BadValue{"uprobe_demangled_symbol", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, uprobe: 'app:f(int, int)'}\n",
                 "perfwatch.yaml:5:37: targets[0].operations[0].uprobe: the symbol must not contain spaces (use the "
                 "mangled name), got 'f(int, int)'"},
        BadValue{"python_one_component", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, python: handler}\n",
                 "perfwatch.yaml:5:37: targets[0].operations[0].python: expected module.qualname such as "
                 "app.handlers.get_user or app.handlers:Handler.get (a module and a function), got 'handler'"},
        BadValue{"python_empty_component", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, python: 'app..f'}\n",
                 "perfwatch.yaml:5:37: targets[0].operations[0].python: empty name component in 'app..f'"},
        BadValue{"python_two_colons", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, python: 'a:b:c'}\n",
                 "perfwatch.yaml:5:37: targets[0].operations[0].python: expected module.qualname or module:qualname "
                 "such as app.handlers.get_user or app.handlers:Handler.get, got 'a:b:c'"},
        BadValue{"unknown_syscall", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, syscall: pread}\n",
                 "perfwatch.yaml:5:38: targets[0].operations[0].syscall: expected one of read, pread64, readv, preadv, "
                 "preadv2, write, pwrite64, writev, pwritev, pwritev2, openat, fsync, fdatasync, got 'pread'"},
        BadValue{"relative_path_prefix", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, syscall: read, path_prefix: data}\n",
                 "perfwatch.yaml:5:57: targets[0].operations[0].path_prefix: expected an absolute path, got 'data'"},
        BadValue{"path_prefix_without_syscall", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, statsd: m, path_prefix: /data}\n",
                 "perfwatch.yaml:5:53: targets[0].operations[0].path_prefix: path_prefix only applies to a syscall "
                 "operation"},
        BadValue{"regular_only_not_bool", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, syscall: read, regular_only: sometimes}\n",
                 "perfwatch.yaml:5:58: targets[0].operations[0].regular_only: expected a boolean, got 'sometimes'"},
        BadValue{"bad_statsd_metric", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, statsd: 'a|ms'}\n",
                 "perfwatch.yaml:5:37: targets[0].operations[0].statsd: expected a StatsD metric name without spaces, "
                 "':', '|', '@' or '#', got 'a|ms'"},
        BadValue{"duplicate_operation", "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n"
                 "      - {name: x, tier: T1, statsd: m}\n      - {name: x, tier: T1, statsd: n}\n",
                 "perfwatch.yaml:6:16: targets[0].operations[1].name: duplicate operation name 'x' (first used on "
                 "line 5)"},
        BadValue{"statsd_metric_in_two_targets",
                 "targets:\n  - name: a\n    match: {pid: 1}\n    operations: [{name: x, tier: T1, statsd: m}]\n"
                 "  - name: b\n    match: {pid: 2}\n    operations: [{name: y, tier: T2, statsd: m}]\n",
                 "perfwatch.yaml:5:5: targets[1]: statsd metric 'm' is already measured by target 'a'; a metric belongs "
                 "to one operation or cache of one target"},
        BadValue{"cache_without_name", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {hits: h, misses: m}\n",
                 "perfwatch.yaml:5:9: targets[0].caches[0]: missing required key 'name'"},
        BadValue{"cache_without_source", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c}\n",
                 "perfwatch.yaml:5:9: targets[0].caches[0]: missing the source: hits and misses (StatsD counters) or hit_usdt and miss_usdt (USDT probes)"},
        BadValue{"cache_both_sources", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c, hits: h, misses: m, hit_usdt: 'app:p:hit', miss_usdt: 'app:p:miss'}\n",
                 "perfwatch.yaml:5:9: targets[0].caches[0]: set hits and misses (StatsD counters) or hit_usdt and miss_usdt (USDT probes), not both"},
        BadValue{"cache_hits_without_misses", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c, hits: h}\n",
                 "perfwatch.yaml:5:9: targets[0].caches[0]: a StatsD cache needs both hits and misses"},
        BadValue{"cache_usdt_without_miss", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c, hit_usdt: 'app:p:hit'}\n",
                 "perfwatch.yaml:5:9: targets[0].caches[0]: a USDT cache needs both hit_usdt and miss_usdt"},
        BadValue{"cache_same_metric", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c, hits: h, misses: h}\n",
                 "perfwatch.yaml:5:36: targets[0].caches[0].misses: hits and misses must be different metrics"},
        BadValue{"cache_bad_metric", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c, hits: 'h|c', misses: m}\n",
                 "perfwatch.yaml:5:25: targets[0].caches[0].hits: expected a StatsD metric name without spaces, ':', '|', '@' or '#', got 'h|c'"},
        BadValue{"cache_bad_usdt", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c, hit_usdt: 'app:hit', miss_usdt: 'app:p:miss'}\n",
                 "perfwatch.yaml:5:29: targets[0].caches[0].hit_usdt: expected BINARY:PROVIDER:NAME such as /usr/bin/app:app:cache_hit or libapp.so:app:cache_miss, got 'app:hit'"},
        BadValue{"cache_usdt_relative_binary", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c, hit_usdt: 'bin/app:p:hit', miss_usdt: 'app:p:miss'}\n",
                 "perfwatch.yaml:5:29: targets[0].caches[0].hit_usdt: the binary must be an absolute path or a file name without '/', got 'bin/app'"},
        BadValue{"cache_reserved_name", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: page_cache, hits: h, misses: m}\n",
                 "perfwatch.yaml:5:16: targets[0].caches[0].name: 'page_cache' is the name of a cache perfwatch measures itself; choose another"},
        BadValue{"duplicate_cache", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c, hits: h, misses: m}\n      - {name: c, hits: i, misses: n}\n",
                 "perfwatch.yaml:6:16: targets[0].caches[1].name: duplicate cache name 'c' (first used on line 5)"},
        BadValue{"unknown_cache_key", "targets:\n  - name: a\n    match: {pid: 1}\n    caches:\n"
                 "      - {name: c, hit: h, misses: m}\n",
                 "perfwatch.yaml:5:9: targets[0].caches[0]: a StatsD cache needs both hits and misses\nperfwatch.yaml:5:19: targets[0].caches[0].hit: unknown key 'hit' (did you mean 'hits'?)"},
        BadValue{"statsd_metric_of_a_cache_and_an_operation",
                 "targets:\n  - name: a\n    match: {pid: 1}\n    operations: [{name: x, tier: T1, statsd: m}]\n"
                 "  - name: b\n    match: {pid: 2}\n    caches: [{name: c, hits: m, misses: n}]\n",
                 "perfwatch.yaml:5:5: targets[1]: statsd metric 'm' is already measured by target 'a'; a metric belongs "
                 "to one operation or cache of one target"},
        BadValue{"cache_settings_sample_period", "cache:\n  llc_sample_period: 0\n",
                 "perfwatch.yaml:2:22: cache.llc_sample_period: must be from 1 to 1000000000, got 0"},
        BadValue{"cache_settings_not_bool", "cache:\n  page_cache: maybe\n",
                 "perfwatch.yaml:2:15: cache.page_cache: expected a boolean, got 'maybe'"},
        BadValue{"statsd_listen", "statsd:\n  listen: localhost\n",
                 "perfwatch.yaml:2:11: statsd.listen: expected HOST:PORT such as 127.0.0.1:7460 or [::1]:7460, got "
                 "'localhost'"},
        BadValue{"statsd_receive_buffer", "statsd:\n  receive_buffer: 1KB\n",
                 "perfwatch.yaml:2:19: statsd.receive_buffer: must be from 64KB to 1GB, got 1KB"},
        BadValue{"statsd_max_packet", "statsd:\n  max_packet: 100KB\n",
                 "perfwatch.yaml:2:15: statsd.max_packet: must be from 512B to 65507B, got 100KB"},
        BadValue{"unknown_statsd_key", "statsd:\n  port: 8125\n",
                 "perfwatch.yaml:2:3: statsd.port: unknown key 'port' (known keys: listen, receive_buffer, max_packet)"},
        BadValue{"duplicate_top_key", "log_level: info\nstate_dir: /a\nlog_level: warn\n",
                 "perfwatch.yaml:3:1: log_level: duplicate key (first set on line 1)"},
        BadValue{"duplicate_nested_key", "storage:\n  retention: 2d\n  retention: 3d\n",
                 "perfwatch.yaml:3:3: storage.retention: duplicate key (first set on line 2)"},
        BadValue{"non_scalar_key", "? [a, b]\n: 1\n", "perfwatch.yaml:1:3: expected a key name, got a sequence"},
        BadValue{"syntax_error", "storage:\n  retention: 2d\n    spool_max: 1GB\n",
                 "perfwatch.yaml:3:14: YAML syntax error: illegal map value"},
        BadValue{"alert_percentile", "alerts:\n  tier: {percentile: p90}\n",
                 "perfwatch.yaml:2:22: alerts.tier.percentile: expected one of p50, p95, p99, max, got 'p90'"},
        BadValue{"alert_objective_percent", "alerts:\n  burn_rate: {objective: 100%}\n",
                 "perfwatch.yaml:2:26: alerts.burn_rate.objective: must be from 50% to 99.999%, got 100%"},
        BadValue{"alert_objective_not_number", "alerts:\n  burn_rate: {objective: most}\n",
                 "perfwatch.yaml:2:26: alerts.burn_rate.objective: expected a percentage such as 10% or a fraction "
                 "such as 0.1, got 'most'"},
        BadValue{"alert_burn_short_not_shorter", "alerts:\n  burn_rate:\n    windows:\n"
                 "      - {long: 1h, short: 1h, factor: 2, severity: page}\n",
                 "perfwatch.yaml:4:27: alerts.burn_rate.windows[0].short: must be shorter than long (1h)"},
        BadValue{"alert_burn_window_incomplete", "alerts:\n  burn_rate:\n    windows:\n      - {long: 1h, short: 5m}\n",
                 "perfwatch.yaml:4:9: alerts.burn_rate.windows[0]: missing required key 'factor'\n"
                 "perfwatch.yaml:4:9: alerts.burn_rate.windows[0]: missing required key 'severity'"},
        BadValue{"alert_factor_zero", "alerts:\n  burn_rate:\n    windows: [{long: 1h, short: 5m, factor: 0, severity: p}]\n",
                 "perfwatch.yaml:3:45: alerts.burn_rate.windows[0].factor: expected a number above 0, got '0'"},
        BadValue{"alert_cache_floor", "alerts:\n  cache: {floor: 120%}\n",
                 "perfwatch.yaml:2:18: alerts.cache.floor: must be from 0% to 100%, got 120%"},
        BadValue{"alert_floor_without_floor", "alerts:\n  cache:\n    floors: [{target: api}]\n",
                 "perfwatch.yaml:3:14: alerts.cache.floors[0]: missing required key 'floor'"},
        BadValue{"alert_pinned_half", "alerts:\n  regression: {baseline_from: 2026-11-20T00:00:00Z}\n",
                 "perfwatch.yaml:2:15: alerts.regression: set baseline_from and baseline_to together (a pinned "
                 "baseline), or neither"},
        BadValue{"alert_pinned_backwards",
                 "alerts:\n  regression: {baseline_from: 2026-11-21T00:00:00Z, baseline_to: 2026-11-20T00:00:00Z}\n",
                 "perfwatch.yaml:2:66: alerts.regression.baseline_to: must be later than baseline_from"},
        BadValue{"alert_pinned_and_rolling",
                 "alerts:\n  regression:\n    baseline: 24h\n    baseline_from: 1700000000\n    baseline_to: 1700003600\n",
                 "perfwatch.yaml:3:15: alerts.regression.baseline: a pinned baseline (baseline_from/baseline_to) "
                 "replaces the rolling one; set one"},
        BadValue{"alert_pinned_not_time", "alerts:\n  regression: {baseline_from: yesterday, baseline_to: 1}\n",
                 "perfwatch.yaml:2:31: alerts.regression.baseline_from: cannot read time 'yesterday': use "
                 "2026-11-24T10:00:00Z or Unix seconds"},
        BadValue{"alert_min_change", "alerts:\n  regression: {min_change: 0}\n",
                 "perfwatch.yaml:2:28: alerts.regression.min_change: must be from 0.1% to 10000%, got 0"},
        BadValue{"alert_min_points", "alerts:\n  regression: {min_points: 1}\n",
                 "perfwatch.yaml:2:28: alerts.regression.min_points: must be from 2 to 10000, got 1"},
        BadValue{"receiver_without_url", "alerts:\n  receivers:\n    - name: ops\n",
                 "perfwatch.yaml:3:7: alerts.receivers[0]: missing required key 'url'"},
        BadValue{"receiver_url_scheme", "alerts:\n  receivers: [{name: ops, url: 'ftp://h/x'}]\n",
                 "perfwatch.yaml:2:32: alerts.receivers[0].url: expected an http:// or https:// URL, got 'ftp://h/x'"},
        BadValue{"receiver_url_credentials", "alerts:\n  receivers: [{name: ops, url: 'https://u:hunter2@h/x'}]\n",
                 "perfwatch.yaml:2:32: alerts.receivers[0].url: must not contain credentials; send them in a header "
                 "whose value comes from the environment or a file"},
        BadValue{"receiver_secret_header_in_yaml",
                 "alerts:\n  receivers:\n    - name: ops\n      url: http://h\n      headers: {Authorization: Bearer x}\n",
                 "perfwatch.yaml:5:32: alerts.receivers[0].headers.Authorization: holds a secret and must not be "
                 "written here: take it from the environment ({env: VARIABLE}) or a file ({file: /path})"},
        BadValue{"receiver_header_two_sources",
                 "alerts:\n  receivers:\n    - name: ops\n      url: http://h\n"
                 "      headers: {X-Token: {env: A, file: /b}}\n",
                 "perfwatch.yaml:5:26: alerts.receivers[0].headers.X-Token: set exactly one of env, file"},
        BadValue{"receiver_header_relative_file",
                 "alerts:\n  receivers:\n    - name: ops\n      url: http://h\n      headers: {X-Token: {file: token}}\n",
                 "perfwatch.yaml:5:33: alerts.receivers[0].headers.X-Token.file: expected an absolute path, got 'token'"},
        BadValue{"receiver_format", "alerts:\n  receivers: [{name: ops, url: 'http://h', format: teams}]\n",
                 "perfwatch.yaml:2:52: alerts.receivers[0].format: expected alertmanager, slack or json, got 'teams'"},
        BadValue{"receiver_alertmanager_with_format",
                 "alerts:\n  receivers: [{name: am, kind: alertmanager, url: 'http://h', format: json}]\n",
                 "perfwatch.yaml:2:71: alerts.receivers[0].format: an alertmanager receiver speaks Alertmanager's "
                 "API; format is for webhooks"},
        BadValue{"receiver_duplicate_name",
                 "alerts:\n  receivers:\n    - {name: ops, url: 'http://a'}\n    - {name: ops, url: 'http://b'}\n",
                 "perfwatch.yaml:4:14: alerts.receivers[1].name: duplicate receiver name 'ops' (first used on line 3)"},
        BadValue{"receiver_backoff_inverted",
                 "alerts:\n  receivers: [{name: ops, url: 'http://h', backoff: {initial: 1m, max: 1s}}]\n",
                 "perfwatch.yaml:2:53: alerts.receivers[0].backoff: max (1s) must be at least initial (1m)"},
        BadValue{"receiver_timeout", "alerts:\n  receivers: [{name: ops, url: 'http://h', timeout: 1h}]\n",
                 "perfwatch.yaml:2:53: alerts.receivers[0].timeout: must be at most 10m, got 1h"}),
    [](const ::testing::TestParamInfo<BadValue>& info) { return std::string(info.param.name); });

TEST(ConfigParse, Operations) {
  const Config c = valid(R"(
tiers: {T2: 400ms}
statsd: {listen: "127.0.0.1:9125", receive_buffer: 16MB, max_packet: 1432B}
targets:
  - name: api
    match: {comm: api}
    operations:
      - {name: lookup, tier: T1, uprobe: "/usr/bin/api:lookup"}
      - {name: handler, tier: T2, python: "app.handlers:Handler.get"}
      - {name: reads, threshold: 20ms, syscall: pread64, path_prefix: /data, regular_only: false}
      - {name: render, tier: T5, statsd: api.render}
)");
  ASSERT_EQ(c.targets.size(), 1u);
  const auto& ops = c.targets[0].operations;
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].source, profile::OperationSource::uprobe);
  EXPECT_EQ(split_uprobe(ops[0].spec), (std::pair<std::string, std::string>{"/usr/bin/api", "lookup"}));
  EXPECT_EQ(ops[1].source, profile::OperationSource::python);
  EXPECT_EQ(ops[1].spec, "app.handlers:Handler.get");
  EXPECT_EQ(c.threshold_of(ops[1]), 400ms) << "a tier's threshold follows the tiers section";
  EXPECT_EQ(ops[2].source, profile::OperationSource::syscall);
  EXPECT_EQ(ops[2].spec, "pread64");
  EXPECT_EQ(ops[2].path_prefix, "/data");
  EXPECT_FALSE(ops[2].regular_only);
  EXPECT_EQ(ops[2].tier, profile::Tier::none);
  EXPECT_EQ(c.threshold_of(ops[2]), 20ms);
  EXPECT_EQ(ops[3].source, profile::OperationSource::statsd);
  EXPECT_EQ(ops[3].spec, "api.render");
  EXPECT_TRUE(ops[0].regular_only) << "default";
  EXPECT_EQ(c.statsd.listen, "127.0.0.1:9125");
  EXPECT_EQ(c.statsd.receive_buffer_bytes, 16ull << 20);
  EXPECT_EQ(c.statsd.max_packet_bytes, 1432u);
}

TEST(ConfigParse, Caches) {
  const Config c = valid(R"(
cache: {page_cache: false, llc: true, llc_sample_period: 5000}
targets:
  - name: api
    match: {comm: api}
    caches:
      - {name: lru, hits: api.lru.hit, misses: api.lru.miss}
      - {name: blocks, hit_usdt: "/usr/lib/libkv.so.1:kv:cache_hit", miss_usdt: "libkv.so.1:kv:cache_miss"}
)");
  EXPECT_FALSE(c.cache.page_cache);
  EXPECT_TRUE(c.cache.llc);
  EXPECT_EQ(c.cache.llc_sample_period, 5000u);
  ASSERT_EQ(c.targets.size(), 1u);
  const auto& caches = c.targets[0].caches;
  ASSERT_EQ(caches.size(), 2u);
  EXPECT_EQ(caches[0].kind, profile::CacheKind::statsd);
  EXPECT_EQ(caches[0].hits, "api.lru.hit");
  EXPECT_EQ(caches[0].misses, "api.lru.miss");
  EXPECT_EQ(caches[0].spec(), "hits api.lru.hit, misses api.lru.miss");
  EXPECT_EQ(caches[1].kind, profile::CacheKind::usdt);
  EXPECT_EQ(caches[1].hit_usdt.binary, "/usr/lib/libkv.so.1");
  EXPECT_EQ(caches[1].hit_usdt.provider, "kv");
  EXPECT_EQ(caches[1].hit_usdt.name, "cache_hit");
  EXPECT_EQ(caches[1].miss_usdt.binary, "libkv.so.1");
  EXPECT_EQ(caches[1].spec(), "hits /usr/lib/libkv.so.1:kv:cache_hit, misses libkv.so.1:kv:cache_miss");
  const Config defaults = valid("");
  EXPECT_TRUE(defaults.cache.page_cache);
  EXPECT_TRUE(defaults.cache.llc);
  EXPECT_EQ(defaults.cache.llc_sample_period, 100u);
}

TEST(ConfigRejects, TooManyOperations) {
  std::string yaml = "targets:\n  - name: a\n    match: {pid: 1}\n    operations:\n";
  for (std::size_t i = 0; i <= max_operations; ++i)
    yaml += "      - {name: op" + std::to_string(i) + ", tier: T1, statsd: m" + std::to_string(i) + "}\n";
  EXPECT_EQ(errors_of(yaml), "perfwatch.yaml:2:5: targets[0]: more than 256 operations in all targets");
}

// cmdline patterns are RE2 syntax (linear time on any input): no backreferences, no lookaround.
TEST(ConfigRejects, CmdlinePatternsRe2CannotCompileWithRe2sReason) {
  const auto cmdline = [](const std::string& pattern) {
    return errors_of("targets:\n  - name: a\n    match:\n      cmdline: '" + pattern + "'\n");
  };
  EXPECT_EQ(cmdline("python[3"),
            "perfwatch.yaml:4:16: targets[0].match.cmdline: invalid regular expression (RE2 syntax): missing ]: [3");
  EXPECT_EQ(cmdline("(java) -jar \\1"),
            "perfwatch.yaml:4:16: targets[0].match.cmdline: invalid regular expression (RE2 syntax): invalid escape "
            "sequence: \\1");
  EXPECT_EQ(cmdline("java (?=-jar)"),
            "perfwatch.yaml:4:16: targets[0].match.cmdline: invalid regular expression (RE2 syntax): invalid perl "
            "operator: (?=");
  EXPECT_EQ(valid("targets:\n  - name: a\n    match: {cmdline: 'gunicorn .*kb_api\\.py'}\n").targets.size(), 1u);
}

TEST(ConfigRejects, PasswordNeverEchoed) {
  for (std::string_view uri :
       {"postgresql://u:hunter2@db/x", "host=db password=hunter2", "postgresql://db/x?password=hunter2"})
    EXPECT_THAT(errors_of("storage: {postgres: '" + std::string(uri) + "'}"), Not(HasSubstr("hunter2")));
}

TEST(ConfigRejects, ReportsEveryProblemOnePerLineInFileOrder) {
  const std::string message = errors_of(R"(log_level: loud
tiers:
  T3: 400ms
storage:
  retension: 2d
  postgres: postgresql://u:secret@db/x
targets:
  - name: api
    match: {comm: api}
  - name: api
    match: {cmdline: '(', pid: -1}
    profile: 2
)");
  std::vector<std::string> lines;
  std::istringstream stream(message);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  EXPECT_THAT(lines,
              ::testing::ElementsAre(
                  "perfwatch.yaml:1:12: log_level: expected one of debug, info, warn, error, got 'loud'",
                  "perfwatch.yaml:3:7: tiers.T3: T3 (400ms) must be longer than T2 (500ms)",
                  "perfwatch.yaml:5:3: storage.retension: unknown key 'retension' (did you mean 'retention'?)",
                  "perfwatch.yaml:6:13: storage.postgres: must not contain a password; put it in the file named by "
                  "storage.password_file or in the PGPASSWORD environment variable",
                  "perfwatch.yaml:10:11: targets[1].name: duplicate target name 'api' (first used on line 8)",
                  "perfwatch.yaml:11:22: targets[1].match.cmdline: invalid regular expression (RE2 syntax): missing ): (",
                  "perfwatch.yaml:11:32: targets[1].match.pid: must be from 1 to 2147483647, got -1",
                  "perfwatch.yaml:12:14: targets[1].profile: expected a boolean, got '2'"));
}

TEST(ConfigAlerts, Defaults) {
  const Config c = valid("dashboard: {listen: '127.0.0.1:9000'}\n");
  const Alerts& a = c.alerts;
  EXPECT_EQ(a.external_url, "http://127.0.0.1:9000");
  EXPECT_EQ(a.evaluation_interval, 10s);
  EXPECT_TRUE(a.tier.enabled);
  EXPECT_EQ(a.tier.percentile, LatencyStatistic::p95);
  EXPECT_EQ(a.tier.for_, 30s);
  EXPECT_DOUBLE_EQ(a.burn_rate.objective, 0.99);
  ASSERT_EQ(a.burn_rate.windows.size(), 3u);
  EXPECT_EQ(a.burn_rate.windows[0].long_window, 1h);
  EXPECT_EQ(a.burn_rate.windows[0].short_window, 5min);
  EXPECT_DOUBLE_EQ(a.burn_rate.windows[0].factor, 14.4);
  EXPECT_EQ(a.burn_rate.windows[2].long_window, 72h);
  EXPECT_EQ(a.burn_rate.windows[2].severity, "ticket");
  EXPECT_FALSE(a.cache.floor);
  EXPECT_EQ(a.regression.baseline, 24h);
  EXPECT_FALSE(a.regression.baseline_from);
  EXPECT_DOUBLE_EQ(a.regression.min_change, 0.10);
  EXPECT_DOUBLE_EQ(a.regression.max_pvalue, 0.001);
  EXPECT_TRUE(a.receivers.empty());
}

TEST(ConfigAlerts, FullSection) {
  const Config c = valid(R"(
alerts:
  external_url: https://perfwatch.example.com/
  evaluation_interval: 5s
  tier: {percentile: p99, for: 1m}
  burn_rate:
    objective: 99.9%
    windows: [{long: 2h, short: 10m, factor: 10, severity: page}]
  cache:
    floor: 0.8
    floors:
      - {target: api, cache: page_cache, floor: 95%}
  regression:
    baseline_from: 2026-11-20T00:00:00Z
    baseline_to: 1795219200
    current: 2h
    min_change: 15%
    max_pvalue: 0.01
    latency_statistic: p50
  receivers:
    - name: ops
      url: https://hooks.example.com/x
      format: slack
      headers:
        Authorization: {env: OPS_TOKEN}
        X-Api-Key: {file: /etc/perfwatch/key}
        X-Source: perfwatch
      timeout: 2s
      send_resolved: false
      repeat_interval: 1h
      backoff: {initial: 200ms, max: 10s}
      ca_file: /etc/ssl/ops.pem
    - {name: am, kind: alertmanager, url: 'http://127.0.0.1:9093'}
)");
  const Alerts& a = c.alerts;
  EXPECT_EQ(a.external_url, "https://perfwatch.example.com");
  EXPECT_EQ(a.evaluation_interval, 5s);
  EXPECT_EQ(a.tier.percentile, LatencyStatistic::p99);
  EXPECT_EQ(a.tier.for_, 1min);
  EXPECT_DOUBLE_EQ(a.burn_rate.objective, 0.999);
  ASSERT_EQ(a.burn_rate.windows.size(), 1u);
  EXPECT_EQ(a.burn_rate.windows[0].long_window, 2h);
  EXPECT_DOUBLE_EQ(*a.cache.floor, 0.8);
  ASSERT_EQ(a.cache.floors.size(), 1u);
  EXPECT_EQ(a.cache.floors[0].cache, "page_cache");
  EXPECT_DOUBLE_EQ(a.cache.floors[0].floor, 0.95);
  EXPECT_EQ(a.regression.baseline_from, profile::TimePoint(std::chrono::seconds(1795132800)));
  EXPECT_EQ(a.regression.baseline_to, profile::TimePoint(std::chrono::seconds(1795219200)));
  EXPECT_EQ(a.regression.current, 2h);
  EXPECT_DOUBLE_EQ(a.regression.min_change, 0.15);
  EXPECT_EQ(a.regression.latency_statistic, LatencyStatistic::p50);
  ASSERT_EQ(a.receivers.size(), 2u);
  const Receiver& ops = a.receivers[0];
  EXPECT_EQ(ops.kind, ReceiverKind::webhook);
  EXPECT_EQ(ops.format, PayloadFormat::slack);
  ASSERT_EQ(ops.headers.size(), 3u);
  EXPECT_EQ(ops.headers[0].name, "Authorization");
  EXPECT_EQ(ops.headers[0].env, "OPS_TOKEN");
  EXPECT_EQ(ops.headers[1].file, "/etc/perfwatch/key");
  EXPECT_EQ(ops.headers[2].value, "perfwatch");
  EXPECT_EQ(ops.timeout, 2s);
  EXPECT_FALSE(ops.send_resolved);
  EXPECT_EQ(ops.repeat(), 1h);
  EXPECT_EQ(ops.backoff_initial, 200ms);
  EXPECT_EQ(ops.backoff_max, 10s);
  EXPECT_EQ(ops.ca_file, "/etc/ssl/ops.pem");
  EXPECT_EQ(a.receivers[1].kind, ReceiverKind::alertmanager);
  EXPECT_EQ(a.receivers[1].repeat(), 1min);
  EXPECT_TRUE(a.receivers[1].send_resolved);
}

TEST(ConfigAlerts, SecretsNeverEchoed) {
  EXPECT_THAT(errors_of("alerts:\n  receivers: [{name: a, url: 'https://u:hunter2@h/'}]\n"), Not(HasSubstr("hunter2")));
  EXPECT_THAT(errors_of("alerts:\n  receivers: [{name: a, url: 'http://h', headers: {X-Token: hunter2}}]\n"),
              Not(HasSubstr("hunter2")));
}

TEST(ConfigExample, IsValidAndMatchesTheQuickStart) {
  Result<Config> result = load_file(example_path);
  ASSERT_TRUE(result.ok()) << result.error().message;
  const Config& c = *result;
  EXPECT_EQ(c.source, example_path);
  EXPECT_EQ(c.state_dir, "/var/lib/perfwatch");
  EXPECT_EQ(c.host, hostname());
  EXPECT_EQ(c.storage.postgres, "");
  EXPECT_EQ(c.sampling.frequency_hz, 99u);
  EXPECT_EQ(c.sampling.window, 10s);
  EXPECT_EQ(c.sampling.python_max_depth, 64u);
  EXPECT_EQ(c.dashboard.listen, "127.0.0.1:7460");
  EXPECT_EQ(c.tiers, Config{}.tiers);
  ASSERT_EQ(c.targets.size(), 1u);
  EXPECT_EQ(c.targets[0].name, "demo");
  EXPECT_EQ(c.targets[0].match.cmdline, "perfwatch-demo");
  EXPECT_TRUE(c.targets[0].profile);
  EXPECT_EQ(c.targets[0].python, PythonMode::auto_detect);
  // The demo's operations span every tier.
  std::set<profile::Tier> tiers;
  for (const Operation& op : c.targets[0].operations) tiers.insert(op.tier);
  for (auto t : {profile::Tier::t1, profile::Tier::t2, profile::Tier::t3, profile::Tier::t4, profile::Tier::t5})
    EXPECT_TRUE(tiers.contains(t)) << "the example measures no " << profile::to_string(t) << " operation";
  EXPECT_EQ(c.statsd.listen, "127.0.0.1:8125");
  // The demo's LRU cache reports its hit rate through StatsD counters.
  ASSERT_EQ(c.targets[0].caches.size(), 1u);
  EXPECT_EQ(c.targets[0].caches[0].kind, profile::CacheKind::statsd);
  EXPECT_TRUE(c.cache.page_cache);
}

// Every key the parser reads is documented in the example, as "key:" (set or commented out).
TEST(ConfigExample, DocumentsEveryKey) {
  const std::string text = read_text(example_path);
  const std::vector<std::string> paths = known_key_paths();
  EXPECT_GE(paths.size(), 28u);
  for (const std::string& path : paths) {
    const std::string leaf = path.substr(path.rfind('.') + 1);
    EXPECT_TRUE(std::regex_search(text, std::regex("(^|[^A-Za-z0-9_])" + leaf + ":")))
        << "perfwatch.example.yaml does not document " << path;
  }
}

TEST(ConfigExample, KnownKeyPathsNameTheSchema) {
  const std::vector<std::string> paths = known_key_paths();
  for (const char* expected : {"state_dir", "storage.password_file", "sampling.window", "dashboard.listen", "tiers.T5",
                               "targets[].profile", "targets[].python", "sampling.python_max_depth",
                               "targets[].match.systemd_unit", "cache.llc_sample_period", "targets[].caches[].hit_usdt"})
    EXPECT_THAT(paths, ::testing::Contains(expected));
}

TEST(ConfigLoadFile, MissingFileNamesIt) {
  Result<Config> result = load_file("/nonexistent/perfwatch.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "/nonexistent/perfwatch.yaml: cannot open: No such file or directory");
}

TEST(ConfigLoadFile, DirectoryIsUnreadable) {
  Result<Config> result = load_file("/tmp");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "/tmp: cannot read: Is a directory");
}

TEST(ConfigLoadFile, ErrorsNameTheFilePath) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("perfwatch-config-test-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(path) << "state_dir: /srv\nsampling:\n  window: 0s\n";
  Result<Config> result = load_file(path);
  std::filesystem::remove(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, path.string() + ":3:11: sampling.window: must be at least 1s, got 0s");
}

}  // namespace
}  // namespace perfwatch::config
