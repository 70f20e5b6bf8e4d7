#pragma once
// /metrics in the Prometheus text exposition format (version 0.0.4). The dashboard knows no daemon
// internals: whatever has numbers to export implements MetricsSource and is handed to the server.
// perfwatchd's own health is one source; per-operation latency and its collection (daemon/latency_metrics.h)
// another.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace perfwatch::dashboard {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Writes families in the order given; each family's HELP and TYPE lines come once, before its samples.
class MetricsWriter {
 public:
  enum class Type { counter, gauge, summary };

  // Starts a family; `name` must match [a-zA-Z_:][a-zA-Z0-9_:]* (counters end in _total by convention).
  MetricsWriter& family(std::string_view name, Type type, std::string_view help);
  // A sample of the current family; `suffix` names a summary's _sum and _count samples.
  MetricsWriter& sample(double value, const Labels& labels = {}, std::string_view suffix = "");

  // Shorthands for a family with one unlabelled sample.
  MetricsWriter& counter(std::string_view name, std::string_view help, double value);
  MetricsWriter& gauge(std::string_view name, std::string_view help, double value);

  const std::string& text() const { return out_; }

 private:
  std::string out_;
  std::string current_;
};

class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  // Called from the HTTP server's threads, concurrently: implementations synchronize themselves.
  virtual void collect(MetricsWriter& out) const = 0;
};

}  // namespace perfwatch::dashboard
