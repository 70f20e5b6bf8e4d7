#pragma once
// Names the Python frames the walker recorded (code object address, instruction index, tag):
// reads each code object from the process (qualname, file name, first line, line table), checks
// that it still is the code object the walker saw (its type and its tag), and caches it per
// process. Stacks are announced by the walker as soon as they are new, so their code objects are
// read while the process is alive; a frame whose code object cannot be read gets a marker name.
//
// Not thread-safe: the daemon drives it from its event loop.
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "collector/python_interpreter.h"
#include "collector/symbolizer.h"
#include "common/profile.h"
#include "probes/pystack.h"

namespace perfwatch::collector {

// Another process's memory; an interface so that the reader is tested on fake memory too.
class ProcessMemory {
 public:
  virtual ~ProcessMemory() = default;
  // Reads size bytes at addr in process pid; false when any of them cannot be read.
  virtual bool read(std::int32_t pid, std::uint64_t addr, void* out, std::size_t size) = 0;
};

// process_vm_readv (needs ptrace access to the process: root, or CAP_SYS_PTRACE).
class LiveProcessMemory final : public ProcessMemory {
 public:
  bool read(std::int32_t pid, std::uint64_t addr, void* out, std::size_t size) override;
};

struct PythonCode {
  std::string qualname;  // co_qualname (3.11+), co_name before
  std::string filename;
  int firstlineno = 0;
  std::vector<std::uint8_t> linetable;
};

enum class PythonCodeError : std::uint8_t {
  unreadable,  // the memory could not be read (the process is gone, or the address is bad)
  wrong_type,  // not a code object (any more)
  reused,      // a code object, but not the one the walker saw: freed and its address reused
  malformed,   // unreadable strings or an implausible size
};

// Reads the code object at `code` whose tag the walker computed as `tag`.
std::variant<PythonCode, PythonCodeError> read_python_code(ProcessMemory& memory, std::int32_t pid,
                                                     const PythonInterpreter& interpreter, std::uint64_t code,
                                                     std::uint32_t tag);

// "file.py:42" of a code object at an instruction (index in code units).
std::string python_location(const PythonCode& code, const PythonLayout& layout, std::int32_t lasti);

struct PythonSymbolizerStats {
  std::size_t processes = 0;
  std::size_t code_objects = 0;  // cached, in all processes
  std::size_t code_bytes = 0;    // what they hold (names, file names, line tables and bookkeeping)
  std::uint64_t reads = 0;       // code objects read
  std::uint64_t cache_hits = 0;
  std::uint64_t unreadable = 0;  // code objects that could not be read (per PythonCodeError but reused)
  std::uint64_t reused = 0;      // code objects found replaced by another at the same address
  std::uint64_t evictions = 0;   // cached code objects dropped to stay within the bound
};

class PythonSymbolizer {
 public:
  // What the code objects of every process together may hold. Each copies up to 1 MiB of line table out
  // of its process, so a count would not bound the memory.
  static constexpr std::size_t default_max_bytes = 64 << 20;

  // Past max_bytes, the least recently used code objects of any process go first.
  explicit PythonSymbolizer(ProcessMemory& memory, std::size_t max_bytes = default_max_bytes);

  void add_process(ProcessKey key, const PythonInterpreter& interpreter);
  const PythonInterpreter* interpreter(ProcessKey key) const;
  // As Symbolizer: a retired process's code objects stay until release_retired().
  void retire_process(ProcessKey key);
  void release_retired();

  // Reads the code objects of frames not cached yet: called for each stack the walker announces.
  void prefetch(ProcessKey key, std::span<const py_frame> frames);
  // One frame per walker frame, same order: kind python, name the qualname, module "file:line";
  // "[unknown python code]" when the code object could not be read.
  std::vector<profile::Frame> symbolize(ProcessKey key, std::span<const py_frame> frames);

  PythonSymbolizerStats stats() const;

 private:
  using CodeKey = std::pair<std::uint64_t, std::uint32_t>;  // (address, tag)
  struct Use {  // an entry's place in the least-recently-used order
    ProcessKey process;
    CodeKey code;
  };
  struct Entry {
    std::shared_ptr<const PythonCode> code;  // null: could not be read
    std::size_t bytes = 0;
    std::list<Use>::iterator use;
  };
  struct Process {
    PythonInterpreter interpreter;
    std::map<CodeKey, Entry> code;
    bool retired = false;
  };
  const Entry& lookup(ProcessKey key, Process& process, const py_frame& frame);
  void evict_beyond_bound();

  ProcessMemory& memory_;
  std::size_t max_bytes_;
  std::map<ProcessKey, Process> processes_;
  std::list<Use> uses_;  // every cached entry, most recently used first
  std::size_t bytes_ = 0;
  PythonSymbolizerStats counters_;
};

}  // namespace perfwatch::collector
