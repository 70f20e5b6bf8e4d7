#include "log.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

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

int libbpf_print(enum libbpf_print_level lvl, const char* fmt, va_list args) {
  Level mapped = lvl == LIBBPF_WARN ? Level::warn : lvl == LIBBPF_INFO ? Level::info : Level::debug;
  if (mapped < g_level.load(std::memory_order_relaxed)) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, args);
  std::string_view text(buf, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  write(mapped, "libbpf", {{"detail", text}});
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

}  // namespace perfwatch::log
