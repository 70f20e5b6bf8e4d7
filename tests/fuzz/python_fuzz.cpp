// Naming Python frames from a process's memory, which its owner controls: the version check on a binary's
// facts, the line-table decoders on any bytes, and code objects, strings and line tables read from fake
// process memory through the cache (whose byte bound is small here, so that it evicts).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "collector/python_code.h"
#include "collector/python_interpreter.h"
#include "collector/python_line_table.h"
#include "tests/fuzz/check.h"

namespace {

using namespace perfwatch::collector;


// Reads from the front of the input; zeros past its end.
class Input {
 public:
  explicit Input(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  template <typename T>
  T take() {
    T value{};
    const std::size_t n = std::min(sizeof value, bytes_.size());
    std::memcpy(&value, bytes_.data(), n);
    bytes_ = bytes_.subspan(n);
    return value;
  }
  std::span<const std::uint8_t> take_bytes(std::size_t size) {
    const auto out = bytes_.first(std::min(size, bytes_.size()));
    bytes_ = bytes_.subspan(out.size());
    return out;
  }
  bool empty() const { return bytes_.empty(); }

 private:
  std::span<const std::uint8_t> bytes_;
};

// Memory made of the input's regions: a count (up to 16), then each ADDRESS (8 bytes, taken 4 KiB
// aligned) LENGTH (2 bytes) BYTES.
class FakeMemory final : public ProcessMemory {
 public:
  explicit FakeMemory(Input& in) {
    const int regions = in.take<std::uint8_t>() % 17;
    for (int i = 0; i < regions && !in.empty(); ++i) {
      const std::uint64_t at = in.take<std::uint64_t>() & ~std::uint64_t{0xfff} & 0xffffffffffff;
      const auto bytes = in.take_bytes(in.take<std::uint16_t>());
      regions_[at].assign(bytes.begin(), bytes.end());
    }
  }
  bool read(std::int32_t, std::uint64_t addr, void* out, std::size_t size) override {
    auto it = regions_.upper_bound(addr);
    if (it == regions_.begin()) return false;
    --it;
    if (addr - it->first > it->second.size() || size > it->second.size() - (addr - it->first)) return false;
    std::memcpy(out, it->second.data() + (addr - it->first), size);
    return true;
  }
  std::uint64_t some_address(std::uint16_t pick) const {
    if (regions_.empty()) return 0;
    auto it = regions_.begin();
    std::advance(it, pick % regions_.size());
    return it->first + (pick >> 8);
  }

 private:
  std::map<std::uint64_t, std::vector<std::uint8_t>> regions_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(std::span(data, size));
  const auto layouts = python_walker_layouts();
  const PythonLayout& layout = *layouts[in.take<std::uint8_t>() % layouts.size()];
  const int firstlineno = in.take<std::int32_t>();
  const std::int32_t lasti = in.take<std::int32_t>();
  switch (in.take<std::uint8_t>() % 3) {
    case 0: {  // the version check: Py_Version's value, the flags and a file name
      PythonBinaryFacts facts;
      const auto version = in.take<std::uint64_t>();
      const auto flags = in.take<std::uint8_t>();
      if (flags & 1) facts.py_version = version;
      facts.debug_build = flags & 2;
      facts.free_threaded = flags & 4;
      const auto name = in.take_bytes(4096);
      facts.file_name.assign(name.begin(), name.end());
      const PythonVersionCheck checked = check_python_version(facts);
      FUZZ_CHECK(checked.layout != nullptr || !checked.reason.empty());
      break;
    }
    case 1: {  // a line table as it is
      const auto table = in.take_bytes(1 << 20);
      for (const LineTableFormat format : {LineTableFormat::pep626, LineTableFormat::locations})
        python_line(format, table, firstlineno, lasti);
      break;
    }
    default: {  // code objects in fake memory, read and named through the cache
      FakeMemory memory(in);
      PythonInterpreter python;
      python.layout = &layout;
      python.code_type = in.take<std::uint8_t>() & 1 ? memory.some_address(in.take<std::uint16_t>()) : 0;
      PythonSymbolizer symbolizer(memory, 16 << 10);
      symbolizer.add_process({1, 1}, python);
      // Frames at addresses of the regions, mostly with the walker's tag of what lies there (a guess rarely
      // matches a 32-bit hash), so that the reads get past the tag check.
      std::vector<py_frame> frames;
      while (!in.empty() && frames.size() < 8) {
        py_frame f{memory.some_address(in.take<std::uint16_t>()), lasti, in.take<std::uint32_t>()};
        const py_layout& w = layout.walker;
        std::uint32_t line = 0;
        std::uint64_t file = 0, name = 0, table = 0;
        const std::uint64_t base = f.code + w.code_tag_base;
        if (f.tag % 4 != 0 && memory.read(1, base + w.code_firstlineno, &line, sizeof line) &&
            memory.read(1, base + w.code_filename, &file, sizeof file) &&
            memory.read(1, base + w.code_name, &name, sizeof name) &&
            memory.read(1, base + w.code_linetable, &table, sizeof table))
          f.tag = py_code_tag(line, file, name, table);
        frames.push_back(f);
      }
      symbolizer.prefetch({1, 1}, frames);
      const auto named = symbolizer.symbolize({1, 1}, frames);
      FUZZ_CHECK(named.size() == frames.size());
      FUZZ_CHECK(symbolizer.stats().code_bytes <= (16 << 10) || symbolizer.stats().code_objects == 1);
      for (const py_frame& f : frames) {
        const auto read = read_python_code(memory, 1, python, f.code, f.tag);
        if (const auto* code = std::get_if<PythonCode>(&read)) python_location(*code, layout, lasti);
      }
      break;
    }
  }
  return 0;
}
