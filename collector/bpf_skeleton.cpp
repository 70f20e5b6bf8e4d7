#include "collector/bpf_skeleton.h"

#include <linux/bpf.h>

#include <cstdlib>
#include <set>

namespace perfwatch::collector {
namespace {

constexpr std::string_view log_begin = "-- BEGIN PROG LOAD LOG --";
constexpr std::string_view log_end = "-- END PROG LOAD LOG --";

// "prog 'NAME': rest" -> NAME; "" for other lines.
std::string_view program_of(std::string_view line) {
  constexpr std::string_view prefix = "prog '";
  const std::size_t at = line.find(prefix);
  if (at == std::string_view::npos) return {};
  const std::size_t end = line.find("': ", at + prefix.size());
  return end == std::string_view::npos ? std::string_view{} : line.substr(at + prefix.size(), end - at - prefix.size());
}

std::string_view after_program(std::string_view line) {
  const std::size_t at = line.find("': ");
  return at == std::string_view::npos ? line : line.substr(at + 3);
}

// The verifier's own message: the log's last line that is not a statistic.
std::string_view verifier_reason(std::string_view log) {
  const std::size_t begin = log.find(log_begin);
  std::string_view body = log.substr(begin == std::string_view::npos ? 0 : begin + log_begin.size());
  body = body.substr(0, body.find(log_end));
  std::string_view reason;
  while (!body.empty()) {
    const std::size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    if (line.empty() || line == "..." || line.starts_with("processed ") || line.starts_with("verification time") ||
        line.starts_with("stack depth"))
      continue;
    reason = line;
  }
  return reason;
}

std::set<std::string> test_rejections() {
  std::set<std::string> out;
  const char* env = std::getenv("PERFWATCH_TEST_REJECT_PROGRAMS");
  std::string_view list = env ? env : "";
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    if (std::string_view item = list.substr(0, comma); !item.empty()) out.emplace(item);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return out;
}

}  // namespace

LoadFailure explain_load_failure(const std::vector<std::string>& warnings) {
  LoadFailure out;
  for (const std::string& line : warnings) {
    if (std::string_view program = program_of(line); !program.empty()) {
      out.program = program;
      break;
    }
  }
  if (out.program.empty()) {
    if (!warnings.empty()) out.reason = warnings.front().substr(0, warnings.front().find('\n'));
    return out;
  }
  std::string_view failed, verifier, first;
  for (const std::string& line : warnings) {
    if (program_of(line) != out.program) continue;
    const std::string_view rest = after_program(line);
    if (first.empty()) first = rest.substr(0, rest.find('\n'));
    if (rest.starts_with("BPF program load failed: ")) failed = rest.substr(rest.find(": ") + 2);
    if (rest.starts_with(log_begin)) verifier = verifier_reason(rest);
  }
  out.reason = out.program + ": ";
  if (!failed.empty())
    out.reason += std::string(failed) + (verifier.empty() ? "" : ": " + std::string(verifier));
  else
    out.reason += first;
  return out;
}

void apply_test_rejections(std::string_view skeleton, bpf_object* obj) {
  const std::set<std::string> rejections = test_rejections();
  if (rejections.empty()) return;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    const std::string name = std::string(skeleton) + "/" + bpf_program__name(prog);
    if (!rejections.count(std::string(skeleton)) && !rejections.count(name)) continue;
    log::warn("test fault point PERFWATCH_TEST_REJECT_PROGRAMS: loading the program as a socket filter, which the "
              "kernel rejects",
              {{"program", name}});
    bpf_program__set_type(prog, BPF_PROG_TYPE_SOCKET_FILTER);
  }
}

}  // namespace perfwatch::collector
