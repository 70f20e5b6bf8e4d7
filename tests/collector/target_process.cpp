#include "target_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

namespace perfwatch::profile {

void PrintTo(const Frame& frame, std::ostream* out) {
  *out << "{" << to_string(frame.kind) << ", \"" << frame.name << "\", \"" << frame.module << "\"}";
}

}  // namespace perfwatch::profile

namespace perfwatch::test {
namespace {

constexpr int kReadyTimeoutMs = 10000;

}  // namespace

TargetProcess::TargetProcess(const std::vector<std::string>& argv) {
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return;
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return;
  }
  if (pid == 0) {
    dup2(to_child[0], STDIN_FILENO);
    dup2(from_child[1], STDOUT_FILENO);
    // Dies with the test, however the test ends.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(args[0], args.data());
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  pid_ = pid;
  stdin_fd_ = to_child[1];
  stdout_fd_ = from_child[0];
  if (!read_until_ready()) kill();
}

TargetProcess::~TargetProcess() {
  kill();
  if (stdin_fd_ >= 0) close(stdin_fd_);
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

std::uint64_t TargetProcess::address(const std::string& name) const {
  auto it = addresses_.find(name);
  if (it == addresses_.end()) {
    ADD_FAILURE() << "the target printed no address for " << name;
    return 0;
  }
  return it->second;
}

bool TargetProcess::command(const std::string& line) {
  std::string text = line + "\n";
  if (write(stdin_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    ADD_FAILURE() << "write to the target: " << std::strerror(errno);
    return false;
  }
  return read_until_ready();
}

bool TargetProcess::read_until_ready() {
  for (;;) {
    std::size_t eol;
    while ((eol = pending_.find('\n')) != std::string::npos) {
      std::string line = pending_.substr(0, eol);
      pending_.erase(0, eol + 1);
      if (line == "ready") return true;
      std::istringstream in(line);
      std::string name, value;
      in >> name >> value;
      if (name == "error") {
        ADD_FAILURE() << "the target failed: " << line;
        return false;
      }
      addresses_[name] = std::strtoull(value.c_str(), nullptr, 16);
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    int ready = poll(&p, 1, kReadyTimeoutMs);
    if (ready <= 0) {
      ADD_FAILURE() << "the target did not get ready in time";
      return false;
    }
    char buf[4096];
    ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) {
      ADD_FAILURE() << "the target exited before it was ready";
      return false;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

void TargetProcess::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

TempDir::TempDir() {
  char pattern[] = "/tmp/pw-symbolizer-XXXXXX";
  if (mkdtemp(pattern) == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void install_copy(const std::string& from, const std::string& to) {
  std::string temporary = to + ".new";
  std::filesystem::copy_file(from, temporary, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::permissions(temporary, std::filesystem::perms(0755));
  std::filesystem::rename(temporary, to);
}

void overwrite_in_place(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
  ASSERT_TRUE(out.good()) << "rewriting " << to;
}

}  // namespace perfwatch::test
