#include "collector/statsd.h"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "common/log.h"

namespace perfwatch::collector {
namespace {

constexpr std::size_t batch = 64;

bool parse_double(std::string_view text, double& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(out);
}

bool known_type(std::string_view type) {
  return type == "ms" || type == "c" || type == "g" || type == "s" || type == "h" || type == "d";
}

// Timers and counters are recorded: their values are bounded (see statsd.h); the others are only counted.
bool within_bounds(const StatsdMetric& m) {
  if (m.type == "ms") return std::abs(m.value) <= statsd_max_timer_ms;
  if (m.type == "c") return std::abs(m.value) <= statsd_max_counter;
  return true;
}

// name:value|type[|@rate][|#tags]
bool parse_line(std::string_view line, StatsdMetric& m) {
  const std::size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  m.name = line.substr(0, colon);
  std::string_view rest = line.substr(colon + 1);
  const std::size_t bar = rest.find('|');
  if (bar == std::string_view::npos) return false;
  const std::string_view value = rest.substr(0, bar);
  rest = rest.substr(bar + 1);
  const std::size_t next = rest.find('|');
  m.type = rest.substr(0, next);
  if (!known_type(m.type)) return false;
  // Gauges may be relative ("+3", "-2"), sets any token; only numbers matter for timers.
  if (m.type == "s") {
    if (value.empty()) return false;
  } else if (!parse_double(value.starts_with('+') ? value.substr(1) : value, m.value)) {
    return false;
  }
  m.rate = 1;
  rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
  bool seen_rate = false, seen_tags = false;
  while (next != std::string_view::npos) {
    const std::size_t end = rest.find('|');
    const std::string_view field = rest.substr(0, end);
    if (field.starts_with('@') && !seen_rate) {
      seen_rate = true;
      if (!parse_double(field.substr(1), m.rate) || m.rate < statsd_min_rate || m.rate > 1) return false;
    } else if (field.starts_with('#') && !seen_tags) {
      seen_tags = true;
      if (field.size() == 1) return false;
    } else {
      return false;
    }
    if (end == std::string_view::npos) break;
    rest = rest.substr(end + 1);
  }
  return within_bounds(m);
}

Result<sockaddr_storage> resolve(const std::string& listen, socklen_t& length) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return make_error("statsd: expected HOST:PORT, got '" + listen + "'");
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int err = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); err != 0)
    return make_error("statsd: cannot resolve " + listen + ": " + gai_strerror(err));
  sockaddr_storage address{};
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  length = found->ai_addrlen;
  freeaddrinfo(found);
  return address;
}

}  // namespace

std::size_t parse_statsd_datagram(std::string_view datagram,
                                  const std::function<void(const StatsdMetric&)>& on_metric) {
  std::size_t malformed = 0;
  while (!datagram.empty()) {
    const std::size_t newline = datagram.find('\n');
    std::string_view line = datagram.substr(0, newline);
    datagram = newline == std::string_view::npos ? std::string_view{} : datagram.substr(newline + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) continue;
    StatsdMetric metric;
    if (parse_line(line, metric))
      on_metric(metric);
    else
      ++malformed;
  }
  return malformed;
}

Result<std::unique_ptr<StatsdListener>> StatsdListener::start(const StatsdOptions& options,
                                                              std::vector<StatsdOperation> operations) {
  std::unique_ptr<StatsdListener> listener(new StatsdListener());
  socklen_t length = 0;
  Result<sockaddr_storage> address = resolve(options.listen, length);
  if (!address) return address.error();
  listener->socket_ = UniqueFd(::socket(address->ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener->socket_) return make_error(std::string("statsd: socket: ") + std::strerror(errno));
  int buffer = static_cast<int>(options.receive_buffer_bytes);
  // FORCE passes net.core.rmem_max with CAP_NET_ADMIN; without it the kernel caps the plain option.
  if (setsockopt(listener->socket_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) != 0) {
    setsockopt(listener->socket_.get(), SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    int granted = 0;
    socklen_t size = sizeof granted;
    getsockopt(listener->socket_.get(), SOL_SOCKET, SO_RCVBUF, &granted, &size);
    // The kernel reports twice what it grants for bookkeeping.
    if (static_cast<std::uint64_t>(granted) / 2 < options.receive_buffer_bytes)
      log::warn("statsd: receive buffer capped by net.core.rmem_max (no CAP_NET_ADMIN); bursts may be dropped",
                {{"requested", options.receive_buffer_bytes}, {"granted", granted / 2},
                 {"fix", "sysctl -w net.core.rmem_max=" + std::to_string(options.receive_buffer_bytes)}});
  }
  if (bind(listener->socket_.get(), reinterpret_cast<const sockaddr*>(&*address), length) != 0)
    return make_error("statsd: cannot listen on " + options.listen + ": " + std::strerror(errno));
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  getsockname(listener->socket_.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length);
  listener->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                      : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listener->stop_ = UniqueFd(eventfd(0, EFD_CLOEXEC));
  if (!listener->stop_) return make_error(std::string("statsd: eventfd: ") + std::strerror(errno));
  listener->max_packet_ = options.max_packet_bytes;
  listener->set_operations(std::move(operations));
  listener->thread_ = std::thread([l = listener.get()] { l->run(); });
  log::info("statsd listener started", {{"listen", options.listen}, {"port", listener->port_}});
  return listener;
}

StatsdListener::~StatsdListener() {
  if (thread_.joinable()) {
    std::uint64_t one = 1;
    if (::write(stop_.get(), &one, sizeof one) < 0) log::error("statsd: cannot stop the listener thread");
    thread_.join();
  }
}

void StatsdRecorder::set_operations(std::vector<StatsdOperation> operations) {
  std::unordered_map<std::string, Operation, Hash, std::equal_to<>> next;
  for (StatsdOperation& op : operations) {
    auto old = operations_.find(op.metric);
    Operation value = old != operations_.end() ? std::move(old->second) : Operation{op.index, op.threshold_ns, {}};
    value.index = op.index;
    value.threshold_ns = op.threshold_ns;
    next.emplace(std::move(op.metric), std::move(value));
  }
  operations_ = std::move(next);
}

void StatsdRecorder::set_counters(std::vector<StatsdCounter> counters) {
  std::unordered_map<std::string, Counter, Hash, std::equal_to<>> next;
  for (StatsdCounter& c : counters) {
    auto old = counters_.find(c.metric);
    next.emplace(std::move(c.metric), Counter{c.index, old != counters_.end() ? old->second.sum : 0});
  }
  counters_ = std::move(next);
}

StatsdDrain StatsdRecorder::drain() {
  StatsdDrain out;
  for (auto& [metric, op] : operations_)
    if (!op.histogram.empty()) out.histograms.emplace_back(op.index, op.histogram.take());
  for (auto& [metric, counter] : counters_) {
    // Sampled counts add up to fractions: what is left over stays for the next window.
    const double whole = std::floor(counter.sum + 1e-9);
    if (whole >= 1) out.counters.emplace_back(counter.index, static_cast<std::uint64_t>(whole));
    counter.sum = std::max(0.0, counter.sum - whole);
  }
  out.stats = stats_;
  out.counter_lines = counter_lines_;
  stats_ = {};
  counter_lines_ = 0;
  return out;
}

void StatsdRecorder::oversized() {
  ++stats_.statsd_packets;
  ++stats_.statsd_oversized;
}

void StatsdRecorder::handle(std::string_view datagram) {
  ++stats_.statsd_packets;
  stats_.statsd_malformed += parse_statsd_datagram(datagram, [this](const StatsdMetric& m) {
    auto it = operations_.find(m.name);
    if (it == operations_.end()) {
      count(m);
    } else if (m.type != "ms" || m.value < 0) {
      ++stats_.statsd_ignored;
    } else if (time(it->second, m)) {
      ++stats_.statsd_timings;
    }
  });
}

// Whether the timer counts: false (and malformed) when its calls would not fit the window's histogram.
bool StatsdRecorder::time(Operation& op, const StatsdMetric& m) {
  const double carry = op.carry + 1 / m.rate;  // at most 1 + 1 / statsd_min_rate
  const auto weight = static_cast<std::uint64_t>(carry);
  if (weight > 0 && !op.histogram.record(static_cast<std::uint64_t>(std::llround(m.value * 1e6)), weight, op.threshold_ns)) {
    ++stats_.statsd_malformed;
    return false;
  }
  op.carry = carry - static_cast<double>(weight);
  return weight > 0;
}

void StatsdRecorder::count(const StatsdMetric& m) {
  auto it = counters_.find(m.name);
  if (it == counters_.end()) {
    ++stats_.statsd_unknown;
    return;
  }
  if (m.type != "c" || m.value < 0) {
    ++stats_.statsd_ignored;
    return;
  }
  const double sum = it->second.sum + m.value / m.rate;
  if (sum > statsd_max_counter) {
    ++stats_.statsd_malformed;
    return;
  }
  it->second.sum = sum;
  ++counter_lines_;
}

void StatsdListener::set_operations(std::vector<StatsdOperation> operations) {
  std::lock_guard lock(mutex_);
  recorder_.set_operations(std::move(operations));
}

void StatsdListener::set_counters(std::vector<StatsdCounter> counters) {
  std::lock_guard lock(mutex_);
  recorder_.set_counters(std::move(counters));
}

StatsdDrain StatsdListener::drain() {
  std::lock_guard lock(mutex_);
  return recorder_.drain();
}

void StatsdListener::run() {
  std::vector<char> buffers(batch * max_packet_);
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> messages(batch);
  for (std::size_t i = 0; i < batch; ++i) {
    iov[i] = {buffers.data() + i * max_packet_, max_packet_};
    messages[i].msg_hdr.msg_iov = &iov[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) {
      log::error("statsd: poll failed; the listener stops", {{"error", std::strerror(errno)}});
      return;
    }
    if (fds[1].revents) return;
    for (;;) {
      for (mmsghdr& m : messages) m.msg_hdr.msg_flags = 0;
      const int n = recvmmsg(socket_.get(), messages.data(), batch, MSG_DONTWAIT, nullptr);
      if (n <= 0) break;
      std::lock_guard lock(mutex_);
      for (int i = 0; i < n; ++i) {
        if (messages[i].msg_hdr.msg_flags & MSG_TRUNC)
          recorder_.oversized();
        else
          recorder_.handle({static_cast<const char*>(iov[i].iov_base), messages[i].msg_len});
      }
    }
  }
}

}  // namespace perfwatch::collector
