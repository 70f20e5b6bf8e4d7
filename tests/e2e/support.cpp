#include "support.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace perfwatch::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void GatedChild::open() {
  ::close(gate);
  gate = -1;
}

GatedChild spawn_gated(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  int in[2];
  EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  ::close(in[0]);
  return {pid, in[1]};
}

std::uint16_t free_port(int type) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::pair<int, std::string> http_get(std::uint16_t port, const std::string& path) {
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", port);
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest request("GET", path, Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    return {response.getStatus(), std::string(std::istreambuf_iterator<char>(in), {})};
  } catch (const std::exception& e) {
    return {0, e.what()};
  }
}

Child spawn(const std::vector<std::string>& argv, const std::string& stderr_path, bool pipe_stdout) {
  int fds[2] = {-1, -1};
  if (pipe_stdout && pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    if (pipe_stdout) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
    }
    int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) dup2(err, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  if (pipe_stdout) close(fds[1]);
  return {pid, pipe_stdout ? fds[0] : -1};
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

std::pair<int, std::string> run(const std::vector<std::string>& argv, const std::string& stderr_path) {
  Child c = spawn(argv, stderr_path, true);
  std::string out = read_all(c.stdout_fd);
  return {wait_exit(c.pid), out};
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Daemon::Daemon(const std::string& name, const std::string& config_body, std::vector<std::string> launcher,
               const std::string& state_dir)
    : launcher_(std::move(launcher)) {
  EXPECT_EQ(geteuid(), 0u) << "the end-to-end tests load BPF programs: run them as root";
  EXPECT_TRUE(fs::exists("/sys/kernel/btf/vmlinux")) << "kernel BTF is required";
  dir_ = fs::temp_directory_path() / ("perfwatch-e2e-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  // The embedded PostgreSQL runs unprivileged and must traverse the path to its directory.
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  state_dir_ = state_dir.empty() ? (dir_ / "state").string() : state_dir;
  config_ = (dir_ / "perfwatch.yaml").string();
  log_ = (dir_ / "perfwatchd.log").string();
  write_config(config_body);
  start();
}

bool Daemon::start() {
  const std::size_t log_offset = log().size();  // a restart appends to the same log
  const auto started = [&] { return log().find("perfwatchd started", log_offset) != std::string::npos; };
  std::vector<std::string> argv = launcher_;
  argv.insert(argv.end(), {PERFWATCHD_PATH, "--config", config_});
  pid_t pid = spawn(argv, log_).pid;
  EXPECT_GT(pid, 0);
  if (pid <= 0) return false;
  // Up to 3 minutes: in an emulated guest (scripts/kernel-matrix.sh) start-up alone takes over one.
  for (int i = 0; i < 1800 && !started(); ++i) {
    if (waitpid(pid, nullptr, WNOHANG) != 0) {
      ADD_FAILURE() << "perfwatchd exited during start-up:\n" << log();
      return false;
    }
    std::this_thread::sleep_for(100ms);
  }
  if (!started()) {
    kill(pid, SIGTERM);
    wait_exit(pid);
    ADD_FAILURE() << "perfwatchd did not start within 3 minutes:\n" << log();
    return false;
  }
  pid_ = pid;
  return true;
}

bool Daemon::restart() {
  if (pid_ > 0) {
    EXPECT_EQ(stop(), 0) << "perfwatchd must exit 0 on SIGTERM:\n" << log();
  }
  return start();
}

Daemon::~Daemon() {
  if (pid_ > 0) EXPECT_EQ(stop(), 0) << "perfwatchd must exit 0 on SIGTERM:\n" << log();
  if (!testing::Test::HasFailure()) fs::remove_all(dir_);
}

bool Daemon::alive() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

int Daemon::stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int code = wait_exit(pid_);
  pid_ = -1;
  return code;
}

void Daemon::kill_hard() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  wait_exit(pid_);
  pid_ = -1;
}

void Daemon::reload() const { kill(pid_, SIGHUP); }

bool Daemon::wait_for_log(const std::string& what, pid_t pid, int count) const {
  const std::regex pid_field("pid=" + std::to_string(pid) + "( |$)");
  for (int i = 0; i < 300; ++i) {
    std::istringstream lines(log());
    int found = 0;
    for (std::string line; std::getline(lines, line);)
      if (line.find(what) != std::string::npos && std::regex_search(line, pid_field)) ++found;
    if (found >= count) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

void Daemon::write_config(const std::string& config_body) const {
  std::ofstream(config_) << "state_dir: " << state_dir_ << "\n" << config_body;
}

std::pair<int, std::string> Daemon::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{PERFWATCH_CLI_PATH, "--config", config_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, (dir_ / "cli.log").string());
}

std::string Daemon::folded(const std::string& target, const std::string& since) const {
  auto [code, out] = cli({"flame", "--target", target, "--since", since, "--format", "folded"});
  EXPECT_EQ(code, 0) << slurp((dir_ / "cli.log").string());
  return out;
}

CacheReader::CacheReader(const std::string& path) {
  int in[2], out[2];
  EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  to_ = in[1];
  from_ = fdopen(out[0], "r");
}

CacheReader::~CacheReader() {
  if (to_ >= 0) ::close(to_);
  if (from_) std::fclose(from_);
  if (pid_ > 0) wait_exit(pid_);
}

std::string CacheReader::run(const std::string& command) {
  const std::string line = command + "\n";
  EXPECT_EQ(::write(to_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  char answer[64] = {};
  if (!std::fgets(answer, sizeof answer, from_)) return "eof";
  return std::string(answer, strcspn(answer, "\n"));
}

fs::path make_cache_file(const std::string& name, std::size_t bytes) {
  const fs::path path = fs::path("/var/tmp") / (name + "-" + std::to_string(getpid()));
  std::string data(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>(i * 2654435761u >> 24);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0);
  // Page by page: small folios. A file written in large writes gets large folios, which a fault may
  // map whole (a PMD) without any filemap tracepoint firing: such mmap lookups go unseen.
  for (std::size_t off = 0; off < bytes; off += 4096)
    EXPECT_EQ(::write(fd, data.data() + off, std::min<std::size_t>(4096, bytes - off)),
              static_cast<ssize_t>(std::min<std::size_t>(4096, bytes - off)));
  EXPECT_EQ(::fsync(fd), 0);
  ::close(fd);
  return path;
}

const nlohmann::json* find_named(const nlohmann::json& doc, const std::string& list, const std::string& name) {
  auto items = doc.find(list);
  if (items == doc.end()) return nullptr;
  for (const nlohmann::json& item : *items)
    if (item.at("name") == name) return &item;
  return nullptr;
}

double cpu_seconds(const std::string& out) {
  auto at = out.find("cpu_ns ");
  return at == std::string::npos ? 0.0 : std::stod(out.substr(at + 7)) / 1e9;
}

void wait_for_log(const Daemon& daemon, const std::string& what, pid_t pid, int count) {
  if (!daemon.wait_for_log(what, pid, count))
    FAIL() << "perfwatchd did not log '" << what << "' " << count << " times for pid " << pid << ":\n" << daemon.log();
}

ExampleConfig example_config() {
  ExampleConfig example{slurp(PERFWATCH_SOURCE_DIR "/config/perfwatch.example.yaml"),
                        "127.0.0.1:" + std::to_string(20000 + (getpid() + 29) % 20000)};
  std::string& yaml = example.yaml;
  yaml = std::regex_replace(yaml, std::regex("\nstate_dir: [^\n]*"), "\n");
  yaml = std::regex_replace(yaml, std::regex("window: 10s"), "window: 2s");
  yaml = std::regex_replace(yaml, std::regex("listen: 127.0.0.1:8125"), "listen: " + example.statsd);
  yaml = std::regex_replace(yaml, std::regex("listen: 127.0.0.1:7460"),
                            "listen: 127.0.0.1:" + std::to_string(20000 + (getpid() + 31) % 20000));
  return example;
}

void wait_for_windows(std::chrono::seconds extra) { std::this_thread::sleep_for(extra); }

Folded::Folded(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    std::uint64_t count = std::stoull(line.substr(space + 1));
    std::string stack = line.substr(0, space);
    total += count;
    lines.emplace_back(stack, count);
    std::map<std::string, bool> seen;
    std::istringstream frames(stack);
    std::string frame;
    while (std::getline(frames, frame, ';'))
      if (!seen[frame]) {
        seen[frame] = true;
        inclusive[frame] += count;
      }
  }
}

double Folded::share(const std::string& frame) const {
  auto it = inclusive.find(frame);
  return total == 0 || it == inclusive.end() ? 0.0 : 100.0 * static_cast<double>(it->second) / total;
}

}  // namespace perfwatch::e2e
