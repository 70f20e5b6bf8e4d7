#include "collector/python_line_table.h"

#include <cstdint>
#include <limits>

namespace perfwatch::collector {
namespace {

// Line numbers are added up from what the process's memory says: in 64 bits, and a sum outside int is
// no line (a real table never gets there).
std::optional<int> as_line(std::int64_t line) {
  if (line < std::numeric_limits<int>::min() || line > std::numeric_limits<int>::max()) return std::nullopt;
  return static_cast<int>(line);
}

// 3.10 (PEP 626): (address delta in bytes, line delta) pairs; a line delta of -128 is "no line".
std::optional<int> pep626_line(std::span<const std::uint8_t> table, int firstlineno, std::int64_t address) {
  std::int64_t line = firstlineno;
  std::int64_t end = 0;
  for (std::size_t i = 0; i + 1 < table.size(); i += 2) {
    const std::int64_t start = end;
    end += table[i];
    auto delta = static_cast<std::int8_t>(table[i + 1]);
    bool no_line = delta == -128;
    if (!no_line) line += delta;
    if (start <= address && address < end) return no_line ? std::nullopt : as_line(line);
  }
  return std::nullopt;
}

// 3.11+ location table (CPython's Objects/locations.md): entries of a first byte 1CCCCLLL (code,
// length - 1 in code units) and code-dependent varints.
class LocationReader {
 public:
  explicit LocationReader(std::span<const std::uint8_t> table) : table_(table) {}
  bool at_end() const { return at_ >= table_.size(); }
  std::uint8_t byte() { return at_ < table_.size() ? table_[at_++] : 0; }
  // 6 bits a byte, least significant first; bit 6 says another byte follows.
  unsigned varint() {
    unsigned value = 0;
    for (unsigned shift = 0; shift < 32; shift += 6) {
      std::uint8_t b = byte();
      value |= static_cast<unsigned>(b & 63) << shift;
      if (!(b & 64)) break;
    }
    return value;
  }
  std::int64_t signed_varint() {
    const unsigned value = varint();
    return value & 1 ? -static_cast<std::int64_t>(value >> 1) : static_cast<std::int64_t>(value >> 1);
  }
  // Skips what remains of the current entry: up to the next byte with the high bit set.
  void next_entry() {
    while (at_ < table_.size() && !(table_[at_] & 128)) ++at_;
  }

 private:
  std::span<const std::uint8_t> table_;
  std::size_t at_ = 0;
};

std::optional<int> location_line(std::span<const std::uint8_t> table, int firstlineno, int lasti) {
  enum : int { kNone = 15, kLong = 14, kNoColumns = 13, kOneLine0 = 10, kOneLine2 = 12 };
  LocationReader reader(table);
  std::int64_t line = firstlineno;
  std::int64_t end = 0;  // in code units
  while (!reader.at_end()) {
    std::uint8_t first = reader.byte();
    if (!(first & 128)) return std::nullopt;  // not the start of an entry: malformed
    int code = (first >> 3) & 15;
    const std::int64_t start = end;
    end += (first & 7) + 1;
    bool no_line = code == kNone;
    if (code == kLong || code == kNoColumns)
      line += reader.signed_varint();
    else if (code >= kOneLine0 && code <= kOneLine2)
      line += code - kOneLine0;
    if (start <= lasti && lasti < end) return no_line ? std::nullopt : as_line(line);
    reader.next_entry();
  }
  return std::nullopt;
}

}  // namespace

std::optional<int> python_line(LineTableFormat format, std::span<const std::uint8_t> table, int firstlineno, int lasti) {
  if (lasti < 0) return firstlineno;
  if (format == LineTableFormat::pep626) return pep626_line(table, firstlineno, std::int64_t{lasti} * 2);
  return location_line(table, firstlineno, lasti);
}

}  // namespace perfwatch::collector
