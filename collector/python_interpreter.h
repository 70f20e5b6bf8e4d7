#pragma once
// Finding CPython in a process: the _PyRuntime symbol in its executable or in a libpython it maps,
// the version (Py_Version, 3.11+; else the file name, e.g. libpython3.10.so.1.0) and where the
// binary is loaded. A version without a known layout, a debug build or a free-threaded build is
// reported as unsupported with the reason, never walked.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "collector/elf_symbols.h"
#include "collector/proc_maps.h"
#include "collector/python_layout.h"
#include "common/result.h"

namespace perfwatch::collector {

struct PythonInterpreter {
  const PythonLayout* layout = nullptr;
  std::uint32_t walker_index = 0;  // the layout's index in the walker's py_layouts
  int major = 0, minor = 0, micro = -1;  // micro: -1 when only the file name told the version
  std::uint64_t runtime = 0;    // address of _PyRuntime in the process
  std::uint64_t code_type = 0;  // address of PyCode_Type in the process: code objects are checked against it
  std::string binary;           // the file holding _PyRuntime, as the process's maps name it

  std::string version() const;  // "3.11.2" or "3.10"
};

struct PythonDetection {
  std::optional<PythonInterpreter> interpreter;  // found and supported
  std::string binary;       // the binary with _PyRuntime, found or not supported; "" when none
  std::string unsupported;  // why a binary with _PyRuntime is not profiled; "" otherwise
};

// Version facts from a binary's symbols and name: pure, unit-tested.
struct PythonBinaryFacts {
  std::optional<std::uint64_t> py_version;  // the value of Py_Version (PY_VERSION_HEX)
  std::string file_name;                     // the binary's base name
  bool debug_build = false;                  // _Py_NegativeRefcount or _Py_RefTotal is defined
  bool free_threaded = false;                // a "t" ABI build: no GIL, different object headers
};
struct PythonVersionCheck {
  int major = 0, minor = 0, micro = -1;
  const PythonLayout* layout = nullptr;  // nullptr: unsupported, see reason
  std::string reason;
};
PythonVersionCheck check_python_version(const PythonBinaryFacts& facts);

// The load bias of a mapped ELF file: its runtime address minus its ELF virtual address, from
// one of its mappings whose offset starts a PT_LOAD segment's page.
std::optional<std::uint64_t> load_bias(const std::vector<MapEntry>& file_mappings, std::span<const LoadSegment> segments);

class PythonDetector {
 public:
  explicit PythonDetector(std::string proc_root = "/proc");
  ~PythonDetector();
  PythonDetector(const PythonDetector&) = delete;
  PythonDetector& operator=(const PythonDetector&) = delete;

  // Looks at the process's executable and every libpython* it maps. Fails only when the process
  // cannot be read (gone: a normal race).
  Result<PythonDetection> detect(std::int32_t pid);

 private:
  struct Binary;  // what one file tells, cached by device, inode, size and mtime
  const Binary& analyze(std::int32_t pid, const MapEntry& entry);

  std::string proc_root_;
  std::map<std::string, Binary> binaries_;
};

}  // namespace perfwatch::collector
