#include "dashboard/metrics.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace perfwatch::dashboard {
namespace {

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// HELP text escapes backslash and newline; label values also escape the double quote.
std::string escape(std::string_view text, bool quote) {
  std::string out;
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (quote && c == '"') out += "\\\"";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  // Integers (every counter here) print exactly; %.17g keeps any double round-trippable.
  if (v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

MetricsWriter& MetricsWriter::family(std::string_view name, Type type, std::string_view help) {
  // A bad name is a programming error: Prometheus would reject the whole scrape.
  if (!valid_name(name)) throw std::invalid_argument("invalid metric name: " + std::string(name));
  current_ = name;
  out_ += "# HELP " + current_ + " " + escape(help, false) + "\n";
  static constexpr std::string_view type_names[] = {" counter\n", " gauge\n", " summary\n"};
  out_ += "# TYPE " + current_ + std::string(type_names[static_cast<int>(type)]);
  return *this;
}

MetricsWriter& MetricsWriter::sample(double value, const Labels& labels, std::string_view suffix) {
  out_ += current_;
  out_ += suffix;
  if (!labels.empty()) {
    out_ += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (!valid_name(labels[i].first) || labels[i].first.find(':') != std::string::npos)
        throw std::invalid_argument("invalid label name: " + labels[i].first);
      out_ += (i ? ",": "") + labels[i].first + "=\"" + escape(labels[i].second, true) + "\"";
    }
    out_ += '}';
  }
  out_ += " " + format_value(value) + "\n";
  return *this;
}

MetricsWriter& MetricsWriter::counter(std::string_view name, std::string_view help, double value) {
  return family(name, Type::counter, help).sample(value);
}

MetricsWriter& MetricsWriter::gauge(std::string_view name, std::string_view help, double value) {
  return family(name, Type::gauge, help).sample(value);
}

}  // namespace perfwatch::dashboard
