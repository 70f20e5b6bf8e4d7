#include "common/probe_state.h"

#include "common/profile.h"

namespace perfwatch::profile {

std::string_view to_string(ProbeFamily family) {
  switch (family) {
    case ProbeFamily::cpu_sampler: return "cpu_sampler";
    case ProbeFamily::python_stacks: return "python_stacks";
    case ProbeFamily::process_events: return "process_events";
    case ProbeFamily::latency_uprobe: return "latency_uprobe";
    case ProbeFamily::latency_python: return "latency_python";
    case ProbeFamily::latency_syscall: return "latency_syscall";
    case ProbeFamily::page_cache: return "page_cache";
    case ProbeFamily::llc: return "llc";
    case ProbeFamily::usdt_caches: return "usdt_caches";
    case ProbeFamily::statsd: return "statsd";
  }
  return "cpu_sampler";
}

bool parse_probe_family(std::string_view text, ProbeFamily& out) {
  for (ProbeFamily f : all_probe_families) {
    if (text == to_string(f)) {
      out = f;
      return true;
    }
  }
  return false;
}

std::string_view to_string(ProbeStatus status) {
  switch (status) {
    case ProbeStatus::off: return "off";
    case ProbeStatus::running: return "running";
    case ProbeStatus::degraded: return "degraded";
    case ProbeStatus::failed: return "failed";
    case ProbeStatus::unsupported: return "unsupported";
  }
  return "off";
}

bool parse_probe_status(std::string_view text, ProbeStatus& out) {
  for (ProbeStatus s : all_probe_statuses) {
    if (text == to_string(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

std::string ProbeState::text() const {
  std::string out(to_string(status));
  if (!detail.empty()) out += ": " + detail;
  return out;
}

ProbeStates::ProbeStates() {
  for (ProbeFamily f : all_probe_families) states_.push_back({f, ProbeStatus::off, ""});
}

void ProbeStates::set(ProbeFamily family, ProbeStatus status, std::string detail) {
  ProbeState& s = (*this)[family];
  s.status = status;
  s.detail = std::move(detail);
}

ProbeFamily family_of(OperationSource source) {
  switch (source) {
    case OperationSource::uprobe: return ProbeFamily::latency_uprobe;
    case OperationSource::python: return ProbeFamily::latency_python;
    case OperationSource::syscall: return ProbeFamily::latency_syscall;
    case OperationSource::statsd: return ProbeFamily::statsd;
  }
  return ProbeFamily::latency_uprobe;
}

std::optional<std::string> not_measured(OperationSource source, const std::vector<ProbeState>& probes) {
  const ProbeFamily family = family_of(source);
  for (const ProbeState& p : probes)
    if (p.family == family && !measures(p.status)) return "not measured: " + std::string(to_string(family)) + " " + p.text();
  return std::nullopt;
}

}  // namespace perfwatch::profile
