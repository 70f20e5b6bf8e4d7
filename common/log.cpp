#include "log.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <string>

namespace perfwatch::log {
namespace {

std::atomic<Level> g_level{Level::info};

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return true;
  return false;
}

void append_value(std::string& line, std::string_view v) {
  if (!needs_quotes(v)) {
    line.append(v);
    return;
  }
  line.push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') {
      line.push_back('\\');
      line.push_back(c);
    } else if (c == '\n') {
      line.append("\\n");
    } else if (static_cast<unsigned char>(c) < 0x20) {
      line.push_back(' ');
    } else {
      line.push_back(c);
    }
  }
  line.push_back('"');
}

thread_local LibbpfWarnings* t_warnings = nullptr;

// libbpf hands a rejected program's whole verifier log (up to megabytes) over in one message; the
// verifier's reason is at its end. Keeps the message's head line and the log's last lines.
std::string shorten_load_log(std::string_view text) {
  constexpr std::string_view begin = "-- BEGIN PROG LOAD LOG --";
  constexpr std::size_t keep_lines = 12;
  const std::size_t at = text.find(begin);
  if (at == std::string_view::npos) return std::string(text.substr(0, 4096));
  std::size_t start = text.size();
  for (std::size_t lines = 0; start > at + begin.size() && lines <= keep_lines;)
    if (text[--start] == '\n') ++lines;
  std::string out(text.substr(0, at + begin.size()));
  if (start > at + begin.size()) out += "\n...";
  out += text.substr(start);
  return out;
}

int libbpf_print(enum libbpf_print_level lvl, const char* fmt, va_list args) {
  Level mapped = lvl == LIBBPF_WARN ? Level::warn : lvl == LIBBPF_INFO ? Level::info : Level::debug;
  if (mapped < g_level.load(std::memory_order_relaxed) && !(t_warnings && lvl == LIBBPF_WARN)) return 0;
  va_list sizing;
  va_copy(sizing, args);
  const int n = vsnprintf(nullptr, 0, fmt, sizing);
  va_end(sizing);
  if (n <= 0) return 0;
  std::string full(static_cast<std::size_t>(n) + 1, '\0');
  vsnprintf(full.data(), full.size(), fmt, args);
  full.resize(static_cast<std::size_t>(n));
  while (!full.empty() && (full.back() == '\n' || full.back() == ' ')) full.pop_back();
  std::string text = shorten_load_log(full);
  if (t_warnings && lvl == LIBBPF_WARN) t_warnings->add(text);
  if (mapped >= g_level.load(std::memory_order_relaxed)) write(mapped, "libbpf", {{"detail", text}});
  return 0;
}

}  // namespace

void set_level(Level level) { g_level.store(level, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view text, Level& out) {
  for (Level l : {Level::debug, Level::info, Level::warn, Level::error}) {
    if (text == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (level < g_level.load(std::memory_order_relaxed)) return;
  std::string line;
  line.reserve(128);
  line.append("level=").append(level_name(level)).append(" msg=");
  append_value(line, msg);
  for (const Field& f : fields) {
    line.push_back(' ');
    line.append(f.key).push_back('=');
    append_value(line, f.value);
  }
  line.push_back('\n');
  // One write(2) per line keeps lines from different threads whole.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

void route_libbpf() { libbpf_set_print(libbpf_print); }

LibbpfWarnings::LibbpfWarnings() : outer_(t_warnings) { t_warnings = this; }
LibbpfWarnings::~LibbpfWarnings() { t_warnings = outer_; }

void LibbpfWarnings::add(std::string line) {
  constexpr std::size_t max_lines = 64;
  if (lines_.size() < max_lines) lines_.push_back(line);
  if (outer_) outer_->add(std::move(line));
}

}  // namespace perfwatch::log
