#pragma once
// Where each supported CPython minor version keeps what the profiler reads: the frame walker's
// offsets (py_layout, probes/pystack.h) and what user space reads of code, str and bytes objects.
//
// Two sources: layouts derived at build time from CPython's own headers (python_layout_gen.c,
// compiled against every include directory with the internal headers that the build machine has,
// such as python3.11-dev's), and a small table for the versions verified on real interpreters. A
// header-derived layout takes precedence; tests check that both agree wherever both exist.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "probes/pystack.h"

namespace perfwatch::collector {

enum class LineTableFormat : std::uint8_t {
  pep626 = 0,     // 3.10: (address delta, line delta) byte pairs
  locations = 1,  // 3.11+: the location table (Objects/locations.md)
};

// What user space reads of CPython objects; offsets in bytes.
struct PythonObjectLayout {
  std::uint16_t code_qualname = PY_ABSENT;  // co_qualname (3.11+); co_name names the frame before
  std::uint16_t code_size = 0;              // bytes of a PyCodeObject to read: through its last field used
  std::uint16_t unicode_state = 0;          // PyASCIIObject.state
  std::uint16_t unicode_length = 0;         // PyASCIIObject.length
  std::uint16_t unicode_ascii_data = 0;     // sizeof(PyASCIIObject): where a compact ASCII string's characters are
  std::uint16_t unicode_compact_data = 0;   // sizeof(PyCompactUnicodeObject): a compact non-ASCII string's
  std::uint16_t bytes_size = 0;             // PyBytesObject.ob_size
  std::uint16_t bytes_data = 0;             // PyBytesObject.ob_sval
  LineTableFormat line_table = LineTableFormat::locations;

  bool operator==(const PythonObjectLayout&) const = default;
};

struct PythonLayout {
  int major = 3;
  int minor = 0;
  py_layout walker{};
  PythonObjectLayout objects;
  const char* source = "";  // "table", or the include directory it was derived from
};

bool operator==(const py_layout& a, const py_layout& b);

// The verified table, one entry per minor version.
std::span<const PythonLayout> python_layout_table();
// Layouts derived from headers at build time (possibly none).
std::span<const PythonLayout> python_layouts_from_headers();
// The layout for a version: header-derived first, then the table; nullptr when unsupported.
const PythonLayout* find_python_layout(int major, int minor);
// "3.10, 3.11, ..." for messages.
std::string supported_python_versions();

// Every layout find_python_layout can return, in a fixed order: the walker's py_layouts array
// (PY_MAX_LAYOUTS entries at most) is filled from it, so a layout's index here is its index there.
std::span<const PythonLayout* const> python_walker_layouts();
std::optional<std::uint32_t> python_walker_index(const PythonLayout& layout);

}  // namespace perfwatch::collector
