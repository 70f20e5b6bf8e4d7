#include "config/config.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <re2/re2.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <tuple>

#include "common/time_text.h"

namespace perfwatch::config {
namespace {

using namespace std::chrono_literals;

// ---- value checks: text in, value or problem out ---------------------------------------------------

Result<std::string> absolute_path(const std::string& text) {
  if (!text.starts_with('/')) return make_error("expected an absolute path, got '" + text + "'");
  return text;
}

Result<Duration> duration_within(std::string_view text, Duration min, Duration max) {
  Result<Duration> d = parse_duration(text);
  if (!d) return d;
  if (*d < min) return make_error("must be at least " + format_duration(min) + ", got " + std::string(text));
  if (*d > max) return make_error("must be at most " + format_duration(max) + ", got " + std::string(text));
  return d;
}

// Sizes use binary multiples, as the storage spool counts bytes on disk.
Result<std::uint64_t> parse_size(std::string_view text) {
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
      {"B", 1}, {"KB", 1ull << 10}, {"MB", 1ull << 20}, {"GB", 1ull << 30}, {"TB", 1ull << 40}};
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
  const auto unit =
      std::find_if(std::begin(units), std::end(units), [&](const auto& u) { return u.first == suffix; });
  if (ec != std::errc{} || end == text.data() || unit == std::end(units))
    return make_error("expected a size such as 512KB, 256MB or 1GB (units B, KB, MB, GB, TB), got '" +
                      std::string(text) + "'");
  if (value > std::numeric_limits<std::uint64_t>::max() / unit->second)
    return make_error("size '" + std::string(text) + "' is too large");
  return value * unit->second;
}

Result<std::uint64_t> spool_size(const std::string& text) {
  Result<std::uint64_t> size = parse_size(text);
  if (size && *size < (1ull << 20)) return make_error("must be at least 1MB, got " + text);
  return size;
}

Result<log::Level> log_level(const std::string& text) {
  log::Level level;
  if (!log::parse_level(text, level)) return make_error("expected one of debug, info, warn, error, got '" + text + "'");
  return level;
}

Result<std::string> non_empty(const std::string& text) {
  if (text.empty()) return make_error("must not be empty");
  return text;
}

// Secrets never live in the YAML: the file is often world-readable and ends up in backups and tickets.
Result<std::string> conninfo(const std::string& text) {
  if (text.empty()) return text;  // the embedded cluster
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfoParse(text.c_str(), &raw_error),
                                                                       PQconninfoFree);
  if (!options) {
    std::string message = raw_error ? raw_error : "out of memory";
    PQfreemem(raw_error);
    while (message.ends_with('\n')) message.pop_back();
    return make_error("invalid PostgreSQL connection string: " + message);
  }
  for (const PQconninfoOption* o = options.get(); o->keyword; ++o)
    if (std::string_view(o->keyword) == "password" && o->val && *o->val)
      return make_error(
          "must not contain a password; put it in the file named by storage.password_file or in the "
          "PGPASSWORD environment variable");
  return text;
}

bool valid_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (std::size_t start = 0; start <= host.size();) {
    std::size_t dot = std::min(host.find('.', start), host.size());
    std::string_view label = host.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    if (!std::all_of(label.begin(), label.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; }))
      return false;
    start = dot + 1;
  }
  return true;
}

Result<std::string> listen_address(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos)
    return make_error("expected HOST:PORT such as 127.0.0.1:7460 or [::1]:7460, got '" + text + "'");
  const std::string host = text.substr(0, colon);
  const std::string_view port = std::string_view(text).substr(colon + 1);
  unsigned port_number = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (ec != std::errc{} || end != port.data() + port.size() || port.empty() || port_number < 1 || port_number > 65535)
    return make_error("port must be a number from 1 to 65535, got '" + std::string(port) + "'");

  unsigned char address[16];
  if (host.empty()) return make_error("missing host; use 0.0.0.0 or [::] to listen on every interface");
  if (host.front() == '[') {
    if (!host.ends_with(']') || inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), address) != 1)
      return make_error("invalid IPv6 address '" + host + "'");
  } else if (host.find(':') != std::string::npos) {
    return make_error("put an IPv6 address in brackets, e.g. [::1]:7460");
  } else if (host.find_first_not_of("0123456789.") == std::string::npos) {
    if (inet_pton(AF_INET, host.c_str(), address) != 1) return make_error("invalid IPv4 address '" + host + "'");
  } else if (!valid_hostname(host)) {
    return make_error("invalid host name '" + host + "'");
  }
  return text;
}

Result<std::string> target_name(const std::string& text) {
  const auto allowed = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  };
  if (text.empty() || !std::all_of(text.begin(), text.end(), allowed))
    return make_error("must be made of letters, digits, '_', '.' and '-', got '" + text + "'");
  return text;
}

// The kernel keeps only 15 bytes of a task's name, so a longer comm could never match.
Result<std::string> comm_name(const std::string& text) {
  if (text.empty()) return make_error("must not be empty");
  if (text.size() > 15)
    return make_error("is " + std::to_string(text.size()) +
                      " bytes but the kernel truncates comm to 15; use its first 15 bytes or match by exe or "
                      "cmdline");
  return text;
}

Result<PythonMode> python_mode(const std::string& text) {
  if (text == "auto") return PythonMode::auto_detect;
  if (text == "on") return PythonMode::on;
  if (text == "off") return PythonMode::off;
  return make_error("expected one of auto, on, off, got '" + text + "'");
}

Result<std::string> cmdline_regex(const std::string& text) {
  if (text.empty()) return make_error("must not be empty (it would match every process)");
  if (const auto pattern = compile_cmdline_pattern(text); !pattern->ok())
    return make_error("invalid regular expression (RE2 syntax): " + pattern->error());
  return text;
}

Result<std::string> systemd_unit(const std::string& text) {
  static constexpr std::string_view suffixes[] = {".service", ".socket", ".device", ".mount", ".automount", ".swap",
                                                  ".target",  ".path",   ".timer",  ".slice", ".scope"};
  const bool has_suffix = std::any_of(std::begin(suffixes), std::end(suffixes),
                                      [&](std::string_view s) { return text.size() > s.size() && text.ends_with(s); });
  if (!has_suffix || text.find('/') != std::string::npos)
    return make_error(
        "expected a unit name ending in .service, .scope, .slice, .socket, .mount, .timer, .target, "
        ".path, .swap, .device or .automount, got '" +
        text + "'");
  return text;
}

Result<std::string> cgroup_path(const std::string& text) {
  if (!text.starts_with('/'))
    return make_error("expected a cgroup path starting with '/', such as /system.slice/app.service, got '" + text +
                      "'");
  return text;
}

// A fraction written as a percentage ("99.9%") or a number (0.999), within [min, max].
Result<double> fraction_within(std::string_view text, double min, double max) {
  const bool percent = text.ends_with('%');
  const std::string_view digits = percent ? text.substr(0, text.size() - 1) : text;
  double value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty())
    return make_error("expected a percentage such as 10% or a fraction such as 0.1, got '" + std::string(text) + "'");
  if (percent) value /= 100;
  if (value < min || value > max) {
    char range[96];
    std::snprintf(range, sizeof range, "must be from %g%% to %g%%", min * 100, max * 100);
    return make_error(std::string(range) + ", got " + std::string(text));
  }
  return value;
}

Result<double> positive_number(const std::string& text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || !(value > 0))
    return make_error("expected a number above 0, got '" + text + "'");
  return value;
}

Result<LatencyStatistic> latency_statistic(const std::string& text) {
  static constexpr std::pair<std::string_view, LatencyStatistic> names[] = {
      {"p50", LatencyStatistic::p50}, {"p95", LatencyStatistic::p95}, {"p99", LatencyStatistic::p99},
      {"max", LatencyStatistic::max}};
  for (const auto& [name, statistic] : names)
    if (text == name) return statistic;
  return make_error("expected one of p50, p95, p99, max, got '" + text + "'");
}

Result<profile::TimePoint> time_point(const std::string& text) { return parse_time(text); }

// Credentials belong in a header taken from the environment or a file, never in the URL.
Result<std::string> http_url(const std::string& text) {
  std::string_view rest;
  for (std::string_view scheme : {"http://", "https://"})
    if (text.starts_with(scheme)) rest = std::string_view(text).substr(scheme.size());
  if (rest.data() == nullptr) return make_error("expected an http:// or https:// URL, got '" + text + "'");
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty()) return make_error("missing host in '" + text + "'");
  if (authority.find('@') != std::string_view::npos)
    return make_error("must not contain credentials; send them in a header whose value comes from the "
                      "environment or a file");
  if (authority.find_first_of(" \t\r\n") != std::string_view::npos) return make_error("invalid host in '" + text + "'");
  return text;
}

Result<std::string> header_name(const std::string& text) {
  const auto token = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  };
  if (text.empty() || !std::all_of(text.begin(), text.end(), token))
    return make_error("invalid HTTP header name '" + text + "'");
  return text;
}

// Header names whose values are credentials: their value must not be written in the YAML.
bool carries_secret(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::string_view word : {"auth", "token", "secret", "key", "password", "cookie", "signature"})
    if (lower.find(word) != std::string::npos) return true;
  return false;
}

Result<std::string> header_value(const std::string& text) {
  if (text.find_first_of("\r\n") != std::string::npos) return make_error("must not contain line breaks");
  return text;
}

Result<std::string> identifier(const std::string& text) { return target_name(text); }

Result<profile::Tier> tier_name(const std::string& text) {
  if (auto tier = profile::parse_tier(text)) return *tier;
  return make_error("expected one of T1, T2, T3, T4, T5, got '" + text + "'");
}

bool has_space(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

Result<std::string> uprobe_spec(const std::string& text) {
  const auto [binary, symbol] = split_uprobe(text);
  if (binary.empty() || symbol.empty() || text.find(':') == std::string::npos)
    return make_error("expected BINARY:SYMBOL such as /usr/bin/app:handle_request or libc.so.6:malloc, got '" +
                      text + "'");
  if (binary.find('/') != std::string::npos && !binary.starts_with('/'))
    return make_error("the binary must be an absolute path or a file name without '/', got '" + binary + "'");
  if (has_space(symbol)) return make_error("the symbol must not contain spaces (use the mangled name), got '" + symbol + "'");
  return text;
}

// "pkg.mod.func", "pkg.mod.Class.method" or, to say where the module ends, "pkg.mod:Class.method".
Result<std::string> python_spec(const std::string& text) {
  const std::string example = " such as app.handlers.get_user or app.handlers:Handler.get";
  const std::size_t colon = text.find(':');
  if (colon != std::string::npos && text.find(':', colon + 1) != std::string::npos)
    return make_error("expected module.qualname or module:qualname" + example + ", got '" + text + "'");
  std::size_t components = 0;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find_first_of(".:", start), text.size());
    if (end == start) return make_error("empty name component in '" + text + "'");
    ++components;
    start = end + 1;
  }
  if (has_space(text) || text.find('/') != std::string::npos)
    return make_error("expected module.qualname" + example + ", got '" + text + "'");
  if (components < 2) return make_error("expected module.qualname" + example + " (a module and a function), got '" + text + "'");
  return text;
}

Result<std::string> syscall_name(const std::string& text) {
  if (std::find(std::begin(syscall_names), std::end(syscall_names), text) != std::end(syscall_names)) return text;
  std::string list;
  for (std::string_view name : syscall_names) list += (list.empty() ? "" : ", ") + std::string(name);
  return make_error("expected one of " + list + ", got '" + text + "'");
}

// The StatsD line format reserves ':', '|', '@' and '#'.
Result<std::string> statsd_metric(const std::string& text) {
  if (text.empty() || text.find_first_of(":|@#\n") != std::string::npos || has_space(text))
    return make_error("expected a StatsD metric name without spaces, ':', '|', '@' or '#', got '" + text + "'");
  return text;
}

// BINARY:PROVIDER:NAME; the provider and name are C identifiers, as <sys/sdt.h> makes them.
Result<UsdtProbe> usdt_probe(const std::string& text) {
  const auto identifier_chars = [](const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
  };
  const std::optional<UsdtProbe> probe = parse_usdt_probe(text);
  if (!probe || !identifier_chars(probe->provider) || !identifier_chars(probe->name))
    return make_error("expected BINARY:PROVIDER:NAME such as /usr/bin/app:app:cache_hit or libapp.so:app:cache_miss, got '" +
                      text + "'");
  if (probe->binary.find('/') != std::string::npos && !probe->binary.starts_with('/'))
    return make_error("the binary must be an absolute path or a file name without '/', got '" + probe->binary + "'");
  return *probe;
}

Result<std::string> app_cache_name(const std::string& text) {
  if (text == "page_cache" || text == "llc")
    return make_error("'" + text + "' is the name of a cache perfwatch measures itself; choose another");
  return identifier(text);
}

Result<std::uint64_t> receive_buffer(const std::string& text) {
  Result<std::uint64_t> size = parse_size(text);
  if (size && (*size < (64ull << 10) || *size > (1ull << 30)))
    return make_error("must be from 64KB to 1GB, got " + text);
  return size;
}

Result<std::uint64_t> max_packet(const std::string& text) {
  Result<std::uint64_t> size = parse_size(text);
  if (size && (*size < 512 || *size > 65507)) return make_error("must be from 512B to 65507B, got " + text);
  return size;
}

// ---- the reader: walks the YAML, records every problem ------------------------------------------

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// One value of the document, with the key path and position its errors name.
struct Entry {
  YAML::Node value;
  std::string path;  // e.g. "targets[1].match.cmdline"
  YAML::Mark mark;   // the value's position, or its key's when the value is empty (yaml-cpp then points
                     // at the next token, often on another line)
};

class Reader;

// One key of a mapping and how to read its value into T.
template <typename T>
struct Field {
  std::string_view key;
  void (*read)(Reader& reader, const Entry& entry, T& out);
};

template <typename T>
std::string key_list(std::span<const Field<T>> fields) {
  std::string list;
  for (const Field<T>& f : fields) list += (list.empty() ? "" : ", ") + std::string(f.key);
  return list;
}

// The T of a Result<T>, so `checked` can return what its check produces.
template <typename R>
struct result_value;
template <typename T>
struct result_value<Result<T>> {
  using type = T;
};

template <typename T>
void assign(T& out, std::optional<T> value) {
  if (value) out = std::move(*value);
}

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  void error(const YAML::Mark& mark, const std::string& path, const std::string& what) {
    std::string where = source_;
    if (!mark.is_null()) where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    problems_.push_back(
        {mark.is_null() ? -1 : mark.line, mark.column, where + ": " + (path.empty() ? what : path + ": " + what)});
  }
  void error(const Entry& at, const std::string& what) { error(at.mark, at.path, what); }

  // A scalar converted by yaml-cpp (bool accepts true/false/yes/no/on/off; integers accept 0x.. too).
  template <typename T>
  std::optional<T> scalar(const Entry& at, std::string_view expected) {
    T value{};
    if (at.value.IsScalar() && YAML::convert<T>::decode(at.value, value)) return value;
    error(at, "expected " + std::string(expected) + ", got " + describe(at.value));
    return std::nullopt;
  }

  // A string checked and converted by `check`, whose error text becomes the message.
  template <typename Check>
  auto checked(const Entry& at, Check check)
      -> std::optional<typename result_value<decltype(check(std::string()))>::type> {
    std::optional<std::string> text = scalar<std::string>(at, "a string");
    if (!text) return std::nullopt;
    auto result = check(*text);
    if (!result) {
      error(at, result.error().message);
      return std::nullopt;
    }
    return std::move(result).value();
  }

  std::optional<std::int64_t> integer(const Entry& at, std::int64_t min, std::int64_t max) {
    std::optional<std::int64_t> value = scalar<std::int64_t>(at, "an integer");
    if (value && (*value < min || *value > max)) {
      error(at,
            "must be from " + std::to_string(min) + " to " + std::to_string(max) + ", got " + std::to_string(*value));
      return std::nullopt;
    }
    return value;
  }

  // Reads each key through its field; unknown and duplicate keys are errors. An empty value stands for
  // an empty mapping. Returns the keys present (by the fields' names), or nullopt when not a mapping.
  template <typename T>
  std::optional<std::map<std::string_view, Entry>> mapping(const Entry& at, std::span<const Field<T>> fields, T& out) {
    std::map<std::string_view, Entry> present;
    if (at.value.IsNull()) return present;
    if (!at.value.IsMap()) {
      error(at, "expected a mapping, got " + describe(at.value));
      return std::nullopt;
    }
    for (const auto& item : at.value) {
      const YAML::Node& key = item.first;
      if (!key.IsScalar()) {
        error(key.Mark(), at.path, "expected a key name, got " + describe(key));
        continue;
      }
      const Entry entry{item.second, join(at.path, key.Scalar()),
                        item.second.IsNull() ? key.Mark() : item.second.Mark()};
      const auto field =
          std::find_if(fields.begin(), fields.end(), [&](const Field<T>& f) { return f.key == key.Scalar(); });
      if (field == fields.end()) {
        error(key.Mark(), entry.path, unknown_key(key.Scalar(), fields));
        continue;
      }
      const auto [first, inserted] = present.emplace(field->key, entry);
      if (!inserted) {
        error(key.Mark(), entry.path,
              "duplicate key (first set on line " + std::to_string(first->second.mark.line + 1) + ")");
        continue;
      }
      field->read(*this, entry, out);
    }
    return present;
  }

  Result<void> outcome() {
    if (problems_.empty()) return {};
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    std::string message;
    for (const Problem& p : problems_) message += (message.empty() ? "" : "\n") + p.text;
    return make_error(std::move(message));
  }

 private:
  template <typename T>
  static std::string unknown_key(const std::string& key, std::span<const Field<T>> fields) {
    std::string_view closest;
    std::size_t best = 3;  // suggest only within an edit distance of 2
    for (const Field<T>& f : fields) {
      if (const std::size_t d = edit_distance(key, f.key); d < best) {
        best = d;
        closest = f.key;
      }
    }
    if (!closest.empty()) return "unknown key '" + key + "' (did you mean '" + std::string(closest) + "'?)";
    return "unknown key '" + key + "' (known keys: " + key_list(fields) + ")";
  }

  struct Problem {
    int line;  // -1 for problems with the file as a whole, sorted first
    int column;
    std::string text;
  };
  std::string source_;
  std::vector<Problem> problems_;
};

// ---- the schema ---------------------------------------------------------------------------------

using Tiers = std::array<Duration, tier_count>;

template <std::size_t I>
void read_tier(Reader& r, const Entry& e, Tiers& tiers) {
  assign(tiers[I], r.checked(e, [](const std::string& t) { return duration_within(t, 1us, Duration::max()); }));
}

const Field<Tiers> tier_fields[] = {
    {"T1", read_tier<0>}, {"T2", read_tier<1>}, {"T3", read_tier<2>}, {"T4", read_tier<3>}, {"T5", read_tier<4>},
};
static_assert(std::size(tier_fields) == tier_count);

const Field<Match> match_fields[] = {
    {"pid",
     [](Reader& r, const Entry& e, Match& m) {
       if (auto pid = r.integer(e, 1, std::numeric_limits<std::int32_t>::max()))
         m.pid = static_cast<std::int32_t>(*pid);
     }},
    {"comm", [](Reader& r, const Entry& e, Match& m) { m.comm = r.checked(e, comm_name); }},
    {"exe", [](Reader& r, const Entry& e, Match& m) { m.exe = r.checked(e, absolute_path); }},
    {"cmdline", [](Reader& r, const Entry& e, Match& m) { m.cmdline = r.checked(e, cmdline_regex); }},
    {"systemd_unit", [](Reader& r, const Entry& e, Match& m) { m.systemd_unit = r.checked(e, systemd_unit); }},
    {"cgroup", [](Reader& r, const Entry& e, Match& m) { m.cgroup = r.checked(e, cgroup_path); }},
};

// The source keys of an operation: exactly one is set.
template <profile::OperationSource S, Result<std::string> (*Check)(const std::string&)>
void read_source(Reader& r, const Entry& e, Operation& op) {
  op.source = S;
  assign(op.spec, r.checked(e, Check));
}

const Field<Operation> operation_fields[] = {
    {"name", [](Reader& r, const Entry& e, Operation& o) { assign(o.name, r.checked(e, identifier)); }},
    {"tier", [](Reader& r, const Entry& e, Operation& o) { assign(o.tier, r.checked(e, tier_name)); }},
    {"threshold",
     [](Reader& r, const Entry& e, Operation& o) {
       assign(o.threshold, r.checked(e, [](const std::string& t) { return duration_within(t, 1us, 24h); }));
     }},
    {"uprobe", read_source<profile::OperationSource::uprobe, uprobe_spec>},
    {"python", read_source<profile::OperationSource::python, python_spec>},
    {"syscall", read_source<profile::OperationSource::syscall, syscall_name>},
    {"statsd", read_source<profile::OperationSource::statsd, statsd_metric>},
    {"path_prefix",
     [](Reader& r, const Entry& e, Operation& o) { assign(o.path_prefix, r.checked(e, absolute_path)); }},
    {"regular_only",
     [](Reader& r, const Entry& e, Operation& o) { assign(o.regular_only, r.scalar<bool>(e, "a boolean")); }},
};

// An integer count within [min, max].
template <typename N>
void read_count(Reader& r, const Entry& e, N& out, std::int64_t min, std::int64_t max) {
  if (auto n = r.integer(e, min, max)) out = static_cast<N>(*n);
}

// One item of a list: where it is, and the keys it set.
struct ListItem {
  Entry at;
  std::map<std::string_view, Entry> keys;
};

// Each item of a sequence of mappings read through `fields`; returns, per item read into out, where it
// is and the keys it set.
template <typename T>
std::vector<ListItem> read_list(Reader& r, const Entry& e, std::span<const Field<T>> fields,
                                std::initializer_list<std::string_view> required, std::vector<T>& out) {
  std::vector<ListItem> items;
  if (e.value.IsNull()) return items;
  if (!e.value.IsSequence()) {
    r.error(e, "expected a sequence, got " + describe(e.value));
    return items;
  }
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    const YAML::Node node = e.value[i];
    const Entry item{node, e.path + "[" + std::to_string(i) + "]", node.Mark()};
    T value;
    auto present = r.mapping<T>(item, fields, value);
    if (!present) continue;
    for (std::string_view key : required)
      if (!present->contains(key)) r.error(item, "missing required key '" + std::string(key) + "'");
    out.push_back(std::move(value));
    items.push_back({item, std::move(*present)});
  }
  return items;
}

// Names that label things in storage and notifications must be unique in their list.
template <typename T>
void unique_names(Reader& r, const std::vector<T>& values, const std::vector<ListItem>& items, const std::string& what) {
  std::map<std::string, int> first_line_of_name;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i].name.empty()) continue;
    const Entry& name = items[i].keys.at("name");
    const auto [first, inserted] = first_line_of_name.emplace(values[i].name, name.mark.line + 1);
    if (!inserted)
      r.error(name, "duplicate " + what + " name '" + values[i].name + "' (first used on line " +
                        std::to_string(first->second) + ")");
  }
}

void read_operations(Reader& r, const Entry& e, std::vector<Operation>& operations) {
  const auto items = read_list<Operation>(r, e, operation_fields, {"name"}, operations);
  unique_names(r, operations, items, "operation");
  for (const ListItem& item : items) {
    const auto& present = item.keys;
    const bool tier = present.contains("tier"), threshold = present.contains("threshold");
    if (tier == threshold)
      r.error(item.at, tier ? "set tier or threshold, not both" : "missing 'tier' (T1..T5) or 'threshold'");
    std::vector<std::string_view> sources;
    for (std::string_view key : {"uprobe", "python", "syscall", "statsd"})
      if (present.contains(key)) sources.push_back(key);
    if (sources.size() != 1)
      r.error(item.at, sources.empty() ? "missing the source: one of uprobe, python, syscall, statsd"
                                       : "set exactly one source, not both " + std::string(sources[0]) + " and " +
                                             std::string(sources[1]));
    for (std::string_view key : {"path_prefix", "regular_only"})
      if (present.contains(key) && !present.contains("syscall"))
        r.error(present.at(key), std::string(key) + " only applies to a syscall operation");
  }
}

const Field<AppCache> cache_fields[] = {
    {"name", [](Reader& r, const Entry& e, AppCache& c) { assign(c.name, r.checked(e, app_cache_name)); }},
    {"hits", [](Reader& r, const Entry& e, AppCache& c) { assign(c.hits, r.checked(e, statsd_metric)); }},
    {"misses", [](Reader& r, const Entry& e, AppCache& c) { assign(c.misses, r.checked(e, statsd_metric)); }},
    {"hit_usdt", [](Reader& r, const Entry& e, AppCache& c) { assign(c.hit_usdt, r.checked(e, usdt_probe)); }},
    {"miss_usdt", [](Reader& r, const Entry& e, AppCache& c) { assign(c.miss_usdt, r.checked(e, usdt_probe)); }},
};

// A cache counts either StatsD counters or USDT probes, always a hit and a miss of the same kind.
void read_caches(Reader& r, const Entry& e, std::vector<AppCache>& caches) {
  const auto items = read_list<AppCache>(r, e, cache_fields, {"name"}, caches);
  unique_names(r, caches, items, "cache");
  for (std::size_t i = 0; i < caches.size(); ++i) {
    const auto& present = items[i].keys;
    const Entry& item = items[i].at;
    AppCache& cache = caches[i];
    const bool statsd = present.contains("hits") || present.contains("misses");
    const bool usdt = present.contains("hit_usdt") || present.contains("miss_usdt");
    if (statsd && usdt)
      r.error(item, "set hits and misses (StatsD counters) or hit_usdt and miss_usdt (USDT probes), not both");
    else if (!statsd && !usdt)
      r.error(item, "missing the source: hits and misses (StatsD counters) or hit_usdt and miss_usdt (USDT probes)");
    else if (statsd && !(present.contains("hits") && present.contains("misses")))
      r.error(item, "a StatsD cache needs both hits and misses");
    else if (usdt && !(present.contains("hit_usdt") && present.contains("miss_usdt")))
      r.error(item, "a USDT cache needs both hit_usdt and miss_usdt");
    else if (statsd && !cache.hits.empty() && cache.hits == cache.misses)
      r.error(present.at("misses"), "hits and misses must be different metrics");
    cache.kind = usdt ? profile::CacheKind::usdt : profile::CacheKind::statsd;
  }
}

const Field<Target> target_fields[] = {
    {"name", [](Reader& r, const Entry& e, Target& t) { assign(t.name, r.checked(e, target_name)); }},
    {"match",
     [](Reader& r, const Entry& e, Target& t) {
       const auto present = r.mapping<Match>(e, match_fields, t.match);
       if (present && present->empty()) r.error(e, "must set at least one of " + key_list<Match>(match_fields));
     }},
    {"profile", [](Reader& r, const Entry& e, Target& t) { assign(t.profile, r.scalar<bool>(e, "a boolean")); }},
    {"python", [](Reader& r, const Entry& e, Target& t) { assign(t.python, r.checked(e, python_mode)); }},
    {"operations", [](Reader& r, const Entry& e, Target& t) { read_operations(r, e, t.operations); }},
    {"caches", [](Reader& r, const Entry& e, Target& t) { read_caches(r, e, t.caches); }},
};

const Field<Storage> storage_fields[] = {
    {"postgres", [](Reader& r, const Entry& e, Storage& s) { assign(s.postgres, r.checked(e, conninfo)); }},
    {"password_file",
     [](Reader& r, const Entry& e, Storage& s) { assign(s.password_file, r.checked(e, absolute_path)); }},
    {"retention",
     [](Reader& r, const Entry& e, Storage& s) {
       assign(s.retention, r.checked(e, [](const std::string& t) { return duration_within(t, 1h, Duration::max()); }));
     }},
    {"spool_max", [](Reader& r, const Entry& e, Storage& s) { assign(s.spool_max_bytes, r.checked(e, spool_size)); }},
};

const Field<Sampling> sampling_fields[] = {
    {"frequency_hz",
     [](Reader& r, const Entry& e, Sampling& s) {
       if (auto hz = r.integer(e, 1, 10000)) s.frequency_hz = static_cast<std::uint32_t>(*hz);
     }},
    {"window",
     [](Reader& r, const Entry& e, Sampling& s) {
       assign(s.window, r.checked(e, [](const std::string& t) { return duration_within(t, 1s, 1h); }));
     }},
    {"python_max_depth",
     [](Reader& r, const Entry& e, Sampling& s) {
       if (auto depth = r.integer(e, 1, max_python_depth)) s.python_max_depth = static_cast<std::uint32_t>(*depth);
     }},
};

const Field<Dashboard> dashboard_fields[] = {
    {"listen", [](Reader& r, const Entry& e, Dashboard& d) { assign(d.listen, r.checked(e, listen_address)); }},
    {"token_file",
     [](Reader& r, const Entry& e, Dashboard& d) { assign(d.token_file, r.checked(e, absolute_path)); }},
    {"allow_unauthenticated",
     [](Reader& r, const Entry& e, Dashboard& d) { assign(d.allow_unauthenticated, r.scalar<bool>(e, "a boolean")); }},
    {"request_timeout",
     [](Reader& r, const Entry& e, Dashboard& d) {
       assign(d.request_timeout, r.checked(e, [](const std::string& t) { return duration_within(t, 1s, 1h); }));
     }},
    {"query_timeout",
     [](Reader& r, const Entry& e, Dashboard& d) {
       assign(d.query_timeout, r.checked(e, [](const std::string& t) { return duration_within(t, 100ms, 1h); }));
     }},
    {"threads",
     [](Reader& r, const Entry& e, Dashboard& d) {
       if (auto n = r.integer(e, 1, 256)) d.threads = static_cast<std::uint32_t>(*n);
     }},
    {"queue",
     [](Reader& r, const Entry& e, Dashboard& d) {
       if (auto n = r.integer(e, 1, 4096)) d.queue = static_cast<std::uint32_t>(*n);
     }},
};

const Field<Statsd> statsd_fields[] = {
    {"listen", [](Reader& r, const Entry& e, Statsd& s) { assign(s.listen, r.checked(e, listen_address)); }},
    {"receive_buffer",
     [](Reader& r, const Entry& e, Statsd& s) { assign(s.receive_buffer_bytes, r.checked(e, receive_buffer)); }},
    {"max_packet", [](Reader& r, const Entry& e, Statsd& s) { assign(s.max_packet_bytes, r.checked(e, max_packet)); }},
};


void read_headers(Reader& r, const Entry& e, std::vector<Header>& headers) {
  if (e.value.IsNull()) return;
  if (!e.value.IsMap()) {
    r.error(e, "expected a mapping of header names to values, got " + describe(e.value));
    return;
  }
  static const Field<Header> source_fields[] = {
      {"env", [](Reader& r, const Entry& e, Header& h) { assign(h.env, r.checked(e, non_empty)); }},
      {"file", [](Reader& r, const Entry& e, Header& h) { assign(h.file, r.checked(e, absolute_path)); }},
  };
  for (const auto& item : e.value) {
    const Entry name_entry{item.first, e.path, item.first.Mark()};
    Header header;
    assign(header.name, r.checked(name_entry, header_name));
    if (header.name.empty()) continue;
    const Entry value{item.second, join(e.path, header.name), item.second.IsNull() ? item.first.Mark() : item.second.Mark()};
    if (value.value.IsMap()) {
      const auto present = r.mapping<Header>(value, source_fields, header);
      if (present && present->size() != 1) r.error(value, "set exactly one of env, file");
    } else {
      assign(header.value, r.checked(value, header_value));
      if (carries_secret(header.name))
        r.error(value, "holds a secret and must not be written here: take it from the environment "
                       "({env: VARIABLE}) or a file ({file: /path})");
    }
    headers.push_back(std::move(header));
  }
}

Result<ReceiverKind> receiver_kind(const std::string& text) {
  if (text == "webhook") return ReceiverKind::webhook;
  if (text == "alertmanager") return ReceiverKind::alertmanager;
  return make_error("expected webhook or alertmanager, got '" + text + "'");
}

Result<PayloadFormat> payload_format(const std::string& text) {
  if (text == "alertmanager") return PayloadFormat::alertmanager;
  if (text == "slack") return PayloadFormat::slack;
  if (text == "json") return PayloadFormat::json;
  return make_error("expected alertmanager, slack or json, got '" + text + "'");
}

Result<Duration> positive_duration(const std::string& text) { return duration_within(text, 1ms, Duration::max()); }

struct Backoff {
  Duration initial;
  Duration max;
};

const Field<Backoff> backoff_fields[] = {
    {"initial", [](Reader& r, const Entry& e, Backoff& b) { assign(b.initial, r.checked(e, positive_duration)); }},
    {"max", [](Reader& r, const Entry& e, Backoff& b) { assign(b.max, r.checked(e, positive_duration)); }},
};

const Field<Receiver> receiver_fields[] = {
    {"name", [](Reader& r, const Entry& e, Receiver& x) { assign(x.name, r.checked(e, target_name)); }},
    {"kind", [](Reader& r, const Entry& e, Receiver& x) { assign(x.kind, r.checked(e, receiver_kind)); }},
    {"url", [](Reader& r, const Entry& e, Receiver& x) { assign(x.url, r.checked(e, http_url)); }},
    {"format", [](Reader& r, const Entry& e, Receiver& x) { assign(x.format, r.checked(e, payload_format)); }},
    {"headers", [](Reader& r, const Entry& e, Receiver& x) { read_headers(r, e, x.headers); }},
    {"timeout",
     [](Reader& r, const Entry& e, Receiver& x) {
       assign(x.timeout, r.checked(e, [](const std::string& t) { return duration_within(t, 1ms, 10min); }));
     }},
    {"send_resolved",
     [](Reader& r, const Entry& e, Receiver& x) { assign(x.send_resolved, r.scalar<bool>(e, "a boolean")); }},
    {"repeat_interval",
     [](Reader& r, const Entry& e, Receiver& x) {
       x.repeat_interval = r.checked(e, [](const std::string& t) { return duration_within(t, 1s, Duration::max()); });
     }},
    {"backoff",
     [](Reader& r, const Entry& e, Receiver& x) {
       Backoff b{x.backoff_initial, x.backoff_max};
       if (!r.mapping<Backoff>(e, backoff_fields, b)) return;
       if (b.max < b.initial)
         r.error(e, "max (" + format_duration(b.max) + ") must be at least initial (" + format_duration(b.initial) + ")");
       x.backoff_initial = b.initial;
       x.backoff_max = b.max;
     }},
    {"ca_file", [](Reader& r, const Entry& e, Receiver& x) { assign(x.ca_file, r.checked(e, absolute_path)); }},
};

void read_receivers(Reader& r, const Entry& e, std::vector<Receiver>& receivers) {
  const auto items = read_list<Receiver>(r, e, receiver_fields, {"name", "url"}, receivers);
  unique_names(r, receivers, items, "receiver");
  for (std::size_t i = 0; i < receivers.size(); ++i)
    if (receivers[i].kind == ReceiverKind::alertmanager && items[i].keys.contains("format"))
      r.error(items[i].keys.at("format"), "an alertmanager receiver speaks Alertmanager's API; format is for webhooks");
}

const Field<TierRule> tier_rule_fields[] = {
    {"enabled", [](Reader& r, const Entry& e, TierRule& t) { assign(t.enabled, r.scalar<bool>(e, "a boolean")); }},
    {"percentile",
     [](Reader& r, const Entry& e, TierRule& t) { assign(t.percentile, r.checked(e, latency_statistic)); }},
    {"for",
     [](Reader& r, const Entry& e, TierRule& t) {
       assign(t.for_, r.checked(e, [](const std::string& x) { return duration_within(x, 0s, 24h); }));
     }},
};

const Field<BurnWindow> burn_window_fields[] = {
    {"long", [](Reader& r, const Entry& e, BurnWindow& w) { assign(w.long_window, r.checked(e, positive_duration)); }},
    {"short", [](Reader& r, const Entry& e, BurnWindow& w) { assign(w.short_window, r.checked(e, positive_duration)); }},
    {"factor", [](Reader& r, const Entry& e, BurnWindow& w) { assign(w.factor, r.checked(e, positive_number)); }},
    {"severity", [](Reader& r, const Entry& e, BurnWindow& w) { assign(w.severity, r.checked(e, target_name)); }},
};

const Field<BurnRateRule> burn_rate_fields[] = {
    {"enabled", [](Reader& r, const Entry& e, BurnRateRule& b) { assign(b.enabled, r.scalar<bool>(e, "a boolean")); }},
    {"objective",
     [](Reader& r, const Entry& e, BurnRateRule& b) {
       assign(b.objective, r.checked(e, [](const std::string& t) { return fraction_within(t, 0.5, 0.99999); }));
     }},
    {"windows",
     [](Reader& r, const Entry& e, BurnRateRule& b) {
       b.windows.clear();
       const auto items = read_list<BurnWindow>(r, e, burn_window_fields, {"long", "short", "factor", "severity"},
                                                b.windows);
       for (std::size_t i = 0; i < b.windows.size(); ++i)
         if (b.windows[i].short_window >= b.windows[i].long_window && items[i].keys.contains("short"))
           r.error(items[i].keys.at("short"), "must be shorter than long (" +
                                                  format_duration(b.windows[i].long_window) + ")");
     }},
    {"min_calls",
     [](Reader& r, const Entry& e, BurnRateRule& b) {
       read_count(r, e, b.min_calls, 1, std::numeric_limits<std::int64_t>::max());
     }},
};

const Field<CacheFloor> cache_floor_fields[] = {
    {"target", [](Reader& r, const Entry& e, CacheFloor& f) { assign(f.target, r.checked(e, target_name)); }},
    {"cache", [](Reader& r, const Entry& e, CacheFloor& f) { assign(f.cache, r.checked(e, non_empty)); }},
    {"floor",
     [](Reader& r, const Entry& e, CacheFloor& f) {
       assign(f.floor, r.checked(e, [](const std::string& t) { return fraction_within(t, 0, 1); }));
     }},
};

const Field<CacheRule> cache_rule_fields[] = {
    {"floor",
     [](Reader& r, const Entry& e, CacheRule& c) {
       c.floor = r.checked(e, [](const std::string& t) { return fraction_within(t, 0, 1); });
     }},
    {"floors",
     [](Reader& r, const Entry& e, CacheRule& c) { read_list<CacheFloor>(r, e, cache_floor_fields, {"floor"}, c.floors); }},
    {"for",
     [](Reader& r, const Entry& e, CacheRule& c) {
       assign(c.for_, r.checked(e, [](const std::string& x) { return duration_within(x, 0s, 24h); }));
     }},
    {"min_lookups",
     [](Reader& r, const Entry& e, CacheRule& c) {
       read_count(r, e, c.min_lookups, 1, std::numeric_limits<std::int64_t>::max());
     }},
};

const Field<RegressionRule> regression_fields[] = {
    {"enabled",
     [](Reader& r, const Entry& e, RegressionRule& g) { assign(g.enabled, r.scalar<bool>(e, "a boolean")); }},
    {"baseline",
     [](Reader& r, const Entry& e, RegressionRule& g) {
       assign(g.baseline, r.checked(e, [](const std::string& t) { return duration_within(t, 1min, Duration::max()); }));
     }},
    {"baseline_from", [](Reader& r, const Entry& e, RegressionRule& g) { g.baseline_from = r.checked(e, time_point); }},
    {"baseline_to", [](Reader& r, const Entry& e, RegressionRule& g) { g.baseline_to = r.checked(e, time_point); }},
    {"current",
     [](Reader& r, const Entry& e, RegressionRule& g) {
       assign(g.current, r.checked(e, [](const std::string& t) { return duration_within(t, 1min, Duration::max()); }));
     }},
    {"min_change",
     [](Reader& r, const Entry& e, RegressionRule& g) {
       assign(g.min_change, r.checked(e, [](const std::string& t) { return fraction_within(t, 0.001, 100); }));
     }},
    {"max_pvalue",
     [](Reader& r, const Entry& e, RegressionRule& g) {
       assign(g.max_pvalue, r.checked(e, [](const std::string& t) { return fraction_within(t, 1e-12, 0.5); }));
     }},
    {"min_points",
     [](Reader& r, const Entry& e, RegressionRule& g) { read_count(r, e, g.min_points, 2, 10000); }},
    {"interval",
     [](Reader& r, const Entry& e, RegressionRule& g) {
       assign(g.interval, r.checked(e, [](const std::string& t) { return duration_within(t, 1s, 24h); }));
     }},
    {"resolve_after",
     [](Reader& r, const Entry& e, RegressionRule& g) {
       assign(g.resolve_after, r.checked(e, [](const std::string& t) { return duration_within(t, 0s, 30 * 24h); }));
     }},
    {"latency_statistic",
     [](Reader& r, const Entry& e, RegressionRule& g) { assign(g.latency_statistic, r.checked(e, latency_statistic)); }},
    {"min_calls",
     [](Reader& r, const Entry& e, RegressionRule& g) {
       read_count(r, e, g.min_calls, 1, std::numeric_limits<std::int64_t>::max());
     }},
    {"min_samples",
     [](Reader& r, const Entry& e, RegressionRule& g) {
       read_count(r, e, g.min_samples, 1, std::numeric_limits<std::int64_t>::max());
     }},
    {"min_share",
     [](Reader& r, const Entry& e, RegressionRule& g) {
       assign(g.min_share, r.checked(e, [](const std::string& t) { return fraction_within(t, 0, 1); }));
     }},
    {"top_functions",
     [](Reader& r, const Entry& e, RegressionRule& g) { read_count(r, e, g.top_functions, 1, 100); }},
};

void read_regression(Reader& r, const Entry& e, RegressionRule& g) {
  const auto present = r.mapping<RegressionRule>(e, regression_fields, g);
  if (!present) return;
  const bool from = present->contains("baseline_from"), to = present->contains("baseline_to");
  if (from != to) r.error(e, "set baseline_from and baseline_to together (a pinned baseline), or neither");
  if (from && to && g.baseline_from && g.baseline_to && *g.baseline_to <= *g.baseline_from)
    r.error(present->at("baseline_to"), "must be later than baseline_from");
  if (from && present->contains("baseline"))
    r.error(present->at("baseline"), "a pinned baseline (baseline_from/baseline_to) replaces the rolling one; set one");
}

const Field<Alerts> alerts_fields[] = {
    {"external_url", [](Reader& r, const Entry& e, Alerts& a) { assign(a.external_url, r.checked(e, http_url)); }},
    {"evaluation_interval",
     [](Reader& r, const Entry& e, Alerts& a) {
       assign(a.evaluation_interval, r.checked(e, [](const std::string& t) { return duration_within(t, 1s, 1h); }));
     }},
    {"tier", [](Reader& r, const Entry& e, Alerts& a) { r.mapping<TierRule>(e, tier_rule_fields, a.tier); }},
    {"burn_rate", [](Reader& r, const Entry& e, Alerts& a) { r.mapping<BurnRateRule>(e, burn_rate_fields, a.burn_rate); }},
    {"cache", [](Reader& r, const Entry& e, Alerts& a) { r.mapping<CacheRule>(e, cache_rule_fields, a.cache); }},
    {"regression", [](Reader& r, const Entry& e, Alerts& a) { read_regression(r, e, a.regression); }},
    {"receivers", [](Reader& r, const Entry& e, Alerts& a) { read_receivers(r, e, a.receivers); }},
};

const Field<CacheSettings> cache_settings_fields[] = {
    {"page_cache",
     [](Reader& r, const Entry& e, CacheSettings& c) { assign(c.page_cache, r.scalar<bool>(e, "a boolean")); }},
    {"llc", [](Reader& r, const Entry& e, CacheSettings& c) { assign(c.llc, r.scalar<bool>(e, "a boolean")); }},
    {"llc_sample_period",
     [](Reader& r, const Entry& e, CacheSettings& c) {
       if (auto n = r.integer(e, 1, 1'000'000'000)) c.llc_sample_period = static_cast<std::uint64_t>(*n);
     }},
};

// The thresholds grade latencies from fast to slow, so each must exceed the one before it.
void read_tiers(Reader& r, const Entry& e, Tiers& tiers) {
  const auto present = r.mapping<Tiers>(e, tier_fields, tiers);
  if (!present) return;
  for (std::size_t i = 1; i < tier_count; ++i) {
    if (tiers[i] > tiers[i - 1]) continue;
    // Blame the tier the file sets: this one, else the one before (a default cannot be wrong alone).
    auto at = present->find(tier_fields[i].key);
    if (at == present->end()) at = present->find(tier_fields[i - 1].key);
    r.error(at->second, std::string(tier_fields[i].key) + " (" + format_duration(tiers[i]) + ") must be longer than " +
                            std::string(tier_fields[i - 1].key) + " (" + format_duration(tiers[i - 1]) + ")");
  }
}

// Without a token, whoever reaches the dashboard reads every profile: beyond this machine, only when the
// configuration says so.
void read_dashboard(Reader& r, const Entry& e, Dashboard& d) {
  const auto present = r.mapping<Dashboard>(e, dashboard_fields, d);
  if (!present || !present->contains("listen") || loopback_listen(d.listen) || !d.token_file.empty() ||
      d.allow_unauthenticated)
    return;
  r.error(present->at("listen"), d.listen + " can be reached from other machines: set dashboard.token_file, or "
                                            "dashboard.allow_unauthenticated: true to let anyone who reaches it "
                                            "read the profiles");
}

void read_targets(Reader& r, const Entry& e, std::vector<Target>& targets) {
  const auto items = read_list<Target>(r, e, target_fields, {"name", "match"}, targets);
  unique_names(r, targets, items, "target");
  // A StatsD packet does not say which process sent it: a metric can belong to one target only.
  std::map<std::string, std::string> statsd_owner;
  std::size_t operations = 0;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const Target& target = targets[i];
    std::vector<std::string> metrics;
    for (const Operation& op : target.operations)
      if (op.source == profile::OperationSource::statsd) metrics.push_back(op.spec);
    for (const AppCache& cache : target.caches)
      if (cache.kind == profile::CacheKind::statsd) {
        metrics.push_back(cache.hits);
        if (cache.misses != cache.hits) metrics.push_back(cache.misses);  // else reported by read_caches
      }
    for (const std::string& metric : metrics) {
      if (metric.empty()) continue;
      const auto [owner, inserted] = statsd_owner.emplace(metric, target.name);
      if (!inserted)
        r.error(items[i].at, "statsd metric '" + metric + "' is already measured by target '" + owner->second +
                                 "'; a metric belongs to one operation or cache of one target");
    }
    operations += target.operations.size();
    if (operations > max_operations && operations - target.operations.size() <= max_operations)
      r.error(items[i].at, "more than " + std::to_string(max_operations) + " operations in all targets");
  }
}

const Field<Config> config_fields[] = {
    {"state_dir", [](Reader& r, const Entry& e, Config& c) { assign(c.state_dir, r.checked(e, absolute_path)); }},
    {"host", [](Reader& r, const Entry& e, Config& c) { assign(c.host, r.checked(e, non_empty)); }},
    {"log_level", [](Reader& r, const Entry& e, Config& c) { assign(c.log_level, r.checked(e, log_level)); }},
    {"storage", [](Reader& r, const Entry& e, Config& c) { r.mapping<Storage>(e, storage_fields, c.storage); }},
    {"sampling", [](Reader& r, const Entry& e, Config& c) { r.mapping<Sampling>(e, sampling_fields, c.sampling); }},
    {"dashboard", [](Reader& r, const Entry& e, Config& c) { read_dashboard(r, e, c.dashboard); }},
    {"statsd", [](Reader& r, const Entry& e, Config& c) { r.mapping<Statsd>(e, statsd_fields, c.statsd); }},
    {"cache", [](Reader& r, const Entry& e, Config& c) { r.mapping<CacheSettings>(e, cache_settings_fields, c.cache); }},
    {"tiers", [](Reader& r, const Entry& e, Config& c) { read_tiers(r, e, c.tiers); }},
    {"targets", [](Reader& r, const Entry& e, Config& c) { read_targets(r, e, c.targets); }},
    {"alerts", [](Reader& r, const Entry& e, Config& c) { r.mapping<Alerts>(e, alerts_fields, c.alerts); }},
};

// Where a second document starts, when the text has one. yaml-cpp's LoadAll never returns on some malformed
// text (found by fuzz_config: a lone ',' makes it build empty documents without end), so the parser is asked
// for two documents at most.
std::optional<YAML::Mark> second_document(const std::string& text) {
  struct Starts final : YAML::EventHandler {
    std::vector<YAML::Mark> marks;
    void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  };
  std::istringstream in(text);
  YAML::Parser parser(in);
  Starts starts;
  if (parser.HandleNextDocument(starts) && parser.HandleNextDocument(starts) && starts.marks.size() > 1)
    return starts.marks[1];
  return std::nullopt;
}

template <typename T>
void add_key_paths(std::vector<std::string>& paths, const std::string& prefix, std::span<const Field<T>> fields) {
  for (const Field<T>& f : fields) paths.push_back(prefix + std::string(f.key));
}

}  // namespace

Result<Config> parse(std::string_view yaml_text, const std::string& source_name) {
  Reader reader(source_name);
  Config config;
  config.source = source_name;
  YAML::Node document;
  try {
    const std::string text(yaml_text);
    if (const std::optional<YAML::Mark> another = second_document(text)) {
      reader.error(*another, "", "expected a single YAML document, found another");
      return reader.outcome().error();
    }
    document = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    reader.error(e.mark, "", "YAML syntax error: " + e.msg);
    return reader.outcome().error();
  }
  // An empty file (or one of comments only) is a null document: every key keeps its default.
  reader.mapping<Config>(Entry{document, "", document.Mark()}, config_fields, config);

  if (config.host.empty()) {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) == 0 && name[0] != '\0')
      config.host = name;
    else
      reader.error(YAML::Mark::null_mark(), "host", "not set and the machine's hostname is unknown; set it");
  }
  if (config.alerts.external_url.empty()) config.alerts.external_url = "http://" + config.dashboard.listen;
  while (config.alerts.external_url.ends_with('/')) config.alerts.external_url.pop_back();
  if (Result<void> outcome = reader.outcome(); !outcome) return outcome.error();
  return config;
}

Result<Config> load_file(const std::string& path) {
  std::unique_ptr<std::FILE, decltype(&std::fclose)> file(std::fopen(path.c_str(), "re"), std::fclose);
  if (!file) return make_error(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buffer[1 << 14];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  // A directory opens fine and fails only on read (EISDIR).
  if (std::ferror(file.get())) return make_error(path + ": cannot read: " + std::strerror(errno));
  return parse(text, path);
}

std::vector<std::string> known_key_paths() {
  std::vector<std::string> paths;
  add_key_paths<Config>(paths, "", config_fields);
  add_key_paths<Storage>(paths, "storage.", storage_fields);
  add_key_paths<Sampling>(paths, "sampling.", sampling_fields);
  add_key_paths<Dashboard>(paths, "dashboard.", dashboard_fields);
  add_key_paths<Tiers>(paths, "tiers.", tier_fields);
  add_key_paths<Target>(paths, "targets[].", target_fields);
  add_key_paths<Match>(paths, "targets[].match.", match_fields);
  add_key_paths<Operation>(paths, "targets[].operations[].", operation_fields);
  add_key_paths<Statsd>(paths, "statsd.", statsd_fields);
  add_key_paths<Alerts>(paths, "alerts.", alerts_fields);
  add_key_paths<TierRule>(paths, "alerts.tier.", tier_rule_fields);
  add_key_paths<BurnRateRule>(paths, "alerts.burn_rate.", burn_rate_fields);
  add_key_paths<BurnWindow>(paths, "alerts.burn_rate.windows[].", burn_window_fields);
  add_key_paths<CacheRule>(paths, "alerts.cache.", cache_rule_fields);
  add_key_paths<CacheFloor>(paths, "alerts.cache.floors[].", cache_floor_fields);
  add_key_paths<RegressionRule>(paths, "alerts.regression.", regression_fields);
  add_key_paths<Receiver>(paths, "alerts.receivers[].", receiver_fields);
  add_key_paths<Backoff>(paths, "alerts.receivers[].backoff.", backoff_fields);
  paths.push_back("alerts.receivers[].headers.*.env");
  paths.push_back("alerts.receivers[].headers.*.file");
  add_key_paths<CacheSettings>(paths, "cache.", cache_settings_fields);
  add_key_paths<AppCache>(paths, "targets[].caches[].", cache_fields);
  return paths;
}

bool loopback_listen(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host == "localhost" || host == "[::1]") return true;
  in_addr address{};
  return inet_pton(AF_INET, host.c_str(), &address) == 1 && (ntohl(address.s_addr) >> 24) == 127;
}

std::unique_ptr<re2::RE2> compile_cmdline_pattern(const std::string& pattern) {
  re2::RE2::Options options;
  options.set_log_errors(false);  // the caller says why, with the file and line
  return std::make_unique<re2::RE2>(pattern, options);
}

std::pair<std::string, std::string> split_uprobe(const std::string& spec) {
  const std::size_t colon = spec.find(':');
  if (colon == std::string::npos) return {spec, ""};
  return {spec.substr(0, colon), spec.substr(colon + 1)};
}

}  // namespace perfwatch::config
