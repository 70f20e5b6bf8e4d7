#pragma once
// Structured, leveled logging to stderr: one line per event, `level=info msg="..." key=value ...`,
// which journald stores as-is. Thread-safe; a line is written with a single write(2).
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace perfwatch::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  template <typename N, typename = decltype(std::to_string(N{}))>
  Field(std::string_view k, N v) : key(k), value(std::to_string(v)) {}
  std::string_view key;
  std::string value;
};

void set_level(Level level);
Level level();
// Parses "debug|info|warn|error"; returns false on anything else.
bool parse_level(std::string_view text, Level& out);

void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::debug, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::info, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::warn, m, f); }
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::error, m, f); }

// Routes libbpf's own messages into this log (libbpf_set_print). A failed program's verifier log is
// logged by its last lines, where the verifier says why.
void route_libbpf();

// While alive, keeps libbpf's warnings on this thread, whatever the log level (a verifier log by its
// last lines): what a failed load says about why. Nests; bounded.
class LibbpfWarnings {
 public:
  LibbpfWarnings();
  ~LibbpfWarnings();
  LibbpfWarnings(const LibbpfWarnings&) = delete;
  LibbpfWarnings& operator=(const LibbpfWarnings&) = delete;
  const std::vector<std::string>& lines() const { return lines_; }
  void add(std::string line);

 private:
  std::vector<std::string> lines_;
  LibbpfWarnings* outer_;
};

}  // namespace perfwatch::log
