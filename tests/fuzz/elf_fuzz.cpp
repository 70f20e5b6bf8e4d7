// ELF symbol loading from arbitrary bytes: segments, build-id, .gnu_debuglink, symbol tables, lookups, and
// the search for separate debug info, which a fixture directory answers with what a hostile binary could
// name: a FIFO, a link to /proc/kmsg, a file that is not ELF, names that climb out of the directory. None
// may block (libFuzzer's -timeout catches that), throw or be read outside the binary's directory.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

#include "collector/elf_symbols.h"
#include "tests/fuzz/check.h"

namespace {

namespace fs = std::filesystem;
using namespace perfwatch::collector;


// <tmp>/bin/app is the binary's path; debug files are looked for beside it, in bin/.debug/ and below
// <tmp>/debug. Build-id 0102...14 (the corpus's) leads to a FIFO.
struct Fixture {
  fs::path root = fs::temp_directory_path() / ("perfwatch-elf-fuzz-" + std::to_string(getpid()));
  Fixture() {
    fs::remove_all(root);
    fs::create_directories(root / "bin/.debug");
    fs::create_directories(root / "debug/.build-id/01");
    fs::create_directories(root / ("debug" + (root / "bin").string()));
    mkfifo((root / "bin/app.debug").c_str(), 0600);
    mkfifo((root / "bin/.debug/fifo.debug").c_str(), 0600);
    mkfifo((root / "fifo").c_str(), 0600);
    mkfifo((root / "debug/.build-id/01/02030405060708090a0b0c0d0e0f1011121314.debug").c_str(), 0600);
    fs::create_symlink("/proc/kmsg", root / "bin/kmsg.debug");
    fs::create_symlink("../fifo", root / "bin/out.debug");
    std::ofstream(root / "bin/plain.debug") << "not an ELF file\n";
    std::ofstream(root / ("debug" + (root / "bin/plain.debug").string())) << "not an ELF file either\n";
  }
};

const Fixture& fixture() {
  static const Fixture* made = [] {
    auto* f = new Fixture();
    std::atexit([] { fs::remove_all(fixture().root); });
    return f;
  }();
  return *made;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto elf = ElfFile::from_memory(std::span(reinterpret_cast<const char*>(data), size));
  if (!elf) return 0;
  const std::string build_id = elf->build_id();
  FUZZ_CHECK(build_id.size() % 2 == 0 && build_id.size() <= 128);
  if (auto link = elf->debuglink()) FUZZ_CHECK(!link->file.empty());
  const auto segments = elf->load_segments();
  for (const LoadSegment& s : segments) {
    if (auto vaddr = file_offset_to_vaddr(segments, s.offset)) FUZZ_CHECK(vaddr_to_file_offset(segments, *vaddr).has_value());
  }
  static constexpr std::string_view names[] = {"main", "_start", "_PyRuntime", "Py_Version"};
  for (const auto& [name, symbol] : elf->find_symbols(names)) {
    if (auto bytes = elf->read_vaddr(symbol.value, 8)) FUZZ_CHECK(bytes->size() == 8);
  }
  elf->has_section(".text");
  elf->keeps_frame_pointers();
  const DebugInfoSearch search{{(fixture().root / "debug").string()}, (fixture().root / "bin/app").string(), ""};
  const ElfImage image = load_elf_image(*elf, search);
  FUZZ_CHECK(image.debug_file.empty());  // no debug file in the fixture is a real one
  for (const LoadSegment& s : image.segments) image.symbols.find(s.vaddr);
  find_function(*elf, search, "main");
  return 0;
}
