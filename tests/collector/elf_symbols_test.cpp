#include "collector/elf_symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <tuple>
#include <vector>

namespace perfwatch::collector {
namespace {

using Kind = SymbolTable::Kind;
using Binding = SymbolTable::Binding;

std::optional<std::string> name_at(const SymbolTable& table, std::uint64_t addr) {
  auto name = table.find(addr);
  return name ? std::optional<std::string>(*name) : std::nullopt;
}

TEST(FileOffsetToVaddr, TranslatesThroughTheLoadSegmentHoldingTheOffset) {
  // A PIE: segments at their file offsets. A non-PIE: at 0x400000.
  std::array<LoadSegment, 2> pie = {LoadSegment{0, 0, 0x1000}, LoadSegment{0x1000, 0x1000, 0x5000}};
  EXPECT_EQ(file_offset_to_vaddr(pie, 0x1234), 0x1234u);
  std::array<LoadSegment, 3> non_pie = {LoadSegment{0, 0x400000, 0x500}, LoadSegment{0x1000, 0x401000, 0x2000},
                                        LoadSegment{0x3e10, 0x404e10, 0x200}};
  EXPECT_EQ(file_offset_to_vaddr(non_pie, 0x1010), 0x401010u);
  EXPECT_EQ(file_offset_to_vaddr(non_pie, 0x3e20), 0x404e20u);
  EXPECT_EQ(file_offset_to_vaddr(non_pie, 0x0), 0x400000u);
  // In no segment's file-backed part: the gap after the first, past the end.
  EXPECT_EQ(file_offset_to_vaddr(non_pie, 0x600), std::nullopt);
  EXPECT_EQ(file_offset_to_vaddr(non_pie, 0x4010), std::nullopt);
  EXPECT_EQ(file_offset_to_vaddr({}, 0x10), std::nullopt);
}

TEST(SymbolTable, FindsTheSymbolWhoseRangeHoldsTheAddress) {
  SymbolTable::Builder b;
  b.add("second", 0x2000, 0x100, 0x9000, Kind::function, Binding::global);
  b.add("first", 0x1000, 0x80, 0x9000, Kind::function, Binding::global);
  SymbolTable t = std::move(b).build();
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(name_at(t, 0x0fff), std::nullopt);
  EXPECT_EQ(name_at(t, 0x1000), "first");
  EXPECT_EQ(name_at(t, 0x107f), "first");
  EXPECT_EQ(name_at(t, 0x1080), std::nullopt);  // padding after a sized function
  EXPECT_EQ(name_at(t, 0x20ff), "second");
  EXPECT_EQ(name_at(t, 0x2100), std::nullopt);
}

TEST(SymbolTable, PrefersAtOneAddressWhatPerfWouldShow) {
  auto best_of = [](std::initializer_list<std::tuple<const char*, std::uint64_t, Kind, Binding>> symbols) {
    SymbolTable::Builder b;
    for (auto [name, size, kind, binding] : symbols) b.add(name, 0x1000, size, 0x9000, kind, binding);
    SymbolTable t = std::move(b).build();
    EXPECT_EQ(t.size(), 1u);
    return name_at(t, 0x1000).value_or("none");
  };
  // A sized function over an unsized one over a label, whatever the binding.
  EXPECT_EQ(best_of({{"label", 0, Kind::label, Binding::global},
                     {"unsized", 0, Kind::function, Binding::global},
                     {"sized", 0x40, Kind::function, Binding::weak}}),
            "sized");
  // Then not weak, then global.
  EXPECT_EQ(best_of({{"clock_gettime", 0x40, Kind::function, Binding::weak},
                     {"__vdso_clock_gettime", 0x40, Kind::function, Binding::global}}),
            "__vdso_clock_gettime");
  EXPECT_EQ(
      best_of({{"a_local", 0x40, Kind::function, Binding::local}, {"a_global", 0x40, Kind::function, Binding::global}}),
      "a_global");
  // Then the fewest leading underscores, then the longest name.
  EXPECT_EQ(best_of({{"__libc_malloc", 0x40, Kind::function, Binding::global},
                     {"malloc", 0x40, Kind::function, Binding::global}}),
            "malloc");
  EXPECT_EQ(
      best_of({{"fn", 0x40, Kind::function, Binding::global}, {"fn_long", 0x40, Kind::function, Binding::global}}),
      "fn_long");
}

TEST(SymbolTable, UnsizedSymbolsReachToTheNextSymbolOrTheirSectionEnd) {
  SymbolTable::Builder b;
  b.add("asm_entry", 0x1000, 0, 0x3000, Kind::function, Binding::global);
  b.add("next", 0x1800, 0x10, 0x3000, Kind::function, Binding::global);
  b.add("tail_label", 0x2000, 0, 0x2800, Kind::label, Binding::local);
  SymbolTable t = std::move(b).build();
  EXPECT_EQ(name_at(t, 0x17ff), "asm_entry");
  EXPECT_EQ(name_at(t, 0x1800), "next");
  EXPECT_EQ(name_at(t, 0x27ff), "tail_label");
  EXPECT_EQ(name_at(t, 0x2800), std::nullopt);  // past its section
}

TEST(SymbolTable, DropsLabelsInsideSizedFunctions) {
  SymbolTable::Builder b;
  b.add("function", 0x1000, 0x100, 0x9000, Kind::function, Binding::global);
  b.add(".Lloop", 0x1040, 0, 0x9000, Kind::label, Binding::local);
  SymbolTable t = std::move(b).build();
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(name_at(t, 0x1080), "function");
}

TEST(SymbolTable, DropsVersionSuffixesAndEmptyNames) {
  SymbolTable::Builder b;
  b.add("memcpy@@GLIBC_2.14", 0x1000, 0x10, 0x9000, Kind::function, Binding::global);
  b.add("old@GLIBC_2.2.5", 0x2000, 0x10, 0x9000, Kind::function, Binding::global);
  b.add("", 0x3000, 0x10, 0x9000, Kind::function, Binding::global);
  SymbolTable t = std::move(b).build();
  EXPECT_EQ(name_at(t, 0x1000), "memcpy");
  EXPECT_EQ(name_at(t, 0x2000), "old");
  EXPECT_EQ(name_at(t, 0x3000), std::nullopt);
  EXPECT_GT(t.memory_bytes(), 0u);
}

Result<ElfFile> open_elf(const std::string& path) { return ElfFile::open(UniqueFd(::open(path.c_str(), O_RDONLY))); }

TEST(ElfFile, ReadsTheTestTargets) {
  auto pie = open_elf(PW_TARGET_PIE);
  ASSERT_TRUE(pie) << pie.error().message;
  EXPECT_EQ(pie->build_id().size(), 40u);  // SHA-1, as GNU ld makes it
  EXPECT_TRUE(pie->has_symtab());
  EXPECT_FALSE(pie->load_segments().empty());
  EXPECT_EQ(pie->debuglink(), std::nullopt);

  auto stripped = open_elf(PW_TARGET_STRIPPED);
  ASSERT_TRUE(stripped) << stripped.error().message;
  EXPECT_FALSE(stripped->has_symtab());
  EXPECT_EQ(stripped->build_id(), pie->build_id());

  auto no_build_id = open_elf(PW_TARGET_NOBUILDID);
  ASSERT_TRUE(no_build_id);
  EXPECT_EQ(no_build_id->build_id(), "");
}

TEST(ElfFile, ReadsTheDebuglinkAndItsCrc) {
  auto linked = open_elf(PW_TARGET_DEBUGLINK);
  ASSERT_TRUE(linked) << linked.error().message;
  auto link = linked->debuglink();
  ASSERT_TRUE(link);
  EXPECT_EQ(link->file, "pw_target_debuglink.debug");

  std::ifstream in(std::string(PW_TARGET_DEBUGLINK) + ".debug", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(bytes.empty());
  auto expected = static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  EXPECT_EQ(link->crc, expected);
  auto debug = open_elf(std::string(PW_TARGET_DEBUGLINK) + ".debug");
  ASSERT_TRUE(debug);
  EXPECT_EQ(debug->crc32().value(), expected);
}

TEST(ElfFile, FindsSymbolsOfAnyTypeByNameAndReadsTheirContents) {
  auto fake = open_elf(PW_FAKE_PYTHON39);
  ASSERT_TRUE(fake) << fake.error().message;
  static constexpr std::string_view kNames[] = {"_PyRuntime", "Py_Version", "fake_interpreter_loop", "absent"};
  auto found = fake->find_symbols(kNames);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found.at("_PyRuntime").size, 4096u);  // an object in .bss
  EXPECT_EQ(found.count("absent"), 0u);
  auto version = fake->read_vaddr(found.at("Py_Version").value, 8);
  ASSERT_TRUE(version) << version.error().message;
  std::uint64_t value = 0;
  std::memcpy(&value, version->data(), 8);
  EXPECT_EQ(value, 0x030912f0u);
  // .bss has no file contents to read.
  EXPECT_FALSE(fake->read_vaddr(found.at("_PyRuntime").value, 8));
  EXPECT_FALSE(fake->read_vaddr(0x7fffffff0000, 8));
  // The functions only (what a uprobe attaches to): the same address, no data.
  auto functions = fake->find_symbols(kNames, SymbolTypes::functions);
  ASSERT_EQ(functions.size(), 1u);
  EXPECT_EQ(functions.at("fake_interpreter_loop").value, found.at("fake_interpreter_loop").value);
}

TEST(ElfFile, TellsBinariesBuiltWithFramePointersFromOthers) {
  for (const char* with : {PW_TARGET_PIE, PW_TARGET_NOPIE, PW_EXT}) {
    auto elf = open_elf(with);
    ASSERT_TRUE(elf) << with;
    EXPECT_TRUE(elf->keeps_frame_pointers()) << with;
  }
  // Debian builds its packages without frame pointers.
  for (const char* without : {"/usr/bin/python3.11", "/usr/lib/x86_64-linux-gnu/libc.so.6"}) {
    auto elf = open_elf(without);
    ASSERT_TRUE(elf) << without;
    EXPECT_FALSE(elf->keeps_frame_pointers()) << without;
  }
}

// Found by fuzz_elf: a PT_LOAD whose addresses wrap around 2^64 translated file offsets to addresses that
// did not translate back. Such a segment is no segment.
TEST(ElfFile, SegmentsThatWrapAroundAreNoSegments) {
  std::ifstream in(PW_TARGET_NOPIE, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Elf64_Ehdr header;
  ASSERT_GE(bytes.size(), sizeof header);
  std::memcpy(&header, bytes.data(), sizeof header);
  const auto original = ElfFile::from_memory(bytes);
  ASSERT_TRUE(original);
  const std::size_t loads = original->load_segments().size();
  for (std::size_t i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr phdr;
    char* at = bytes.data() + header.e_phoff + i * header.e_phentsize;
    std::memcpy(&phdr, at, sizeof phdr);
    if (phdr.p_type != PT_LOAD || phdr.p_filesz == 0) continue;
    phdr.p_vaddr = ~std::uint64_t{0} - phdr.p_filesz / 2;
    std::memcpy(at, &phdr, sizeof phdr);
    break;
  }
  const auto wrapped = ElfFile::from_memory(bytes);
  ASSERT_TRUE(wrapped);
  const auto segments = wrapped->load_segments();
  EXPECT_EQ(segments.size(), loads - 1);
  for (const LoadSegment& s : segments)
    if (auto vaddr = file_offset_to_vaddr(segments, s.offset)) EXPECT_TRUE(vaddr_to_file_offset(segments, *vaddr));
}

TEST(ElfFile, RejectsWhatIsNotElf) {
  EXPECT_FALSE(open_elf("/proc/self/status"));
  EXPECT_FALSE(ElfFile::from_memory(std::span<const char>("not an ELF image", 16)));
}

TEST(LoadElfImage, CompletesAStrippedBinaryFromDebugInfoByBuildId) {
  auto stripped = open_elf(PW_TARGET_STRIPPED);
  ASSERT_TRUE(stripped);
  ElfImage dynsym_only = load_elf_image(*stripped, {{}, PW_TARGET_STRIPPED, ""});
  ElfImage completed = load_elf_image(*stripped, {{"/nonexistent", PW_DEBUG_ROOT}, PW_TARGET_STRIPPED, ""});
  EXPECT_EQ(dynsym_only.debug_file, "");
  EXPECT_NE(completed.debug_file.find(PW_DEBUG_ROOT "/.build-id/"), std::string::npos) << completed.debug_file;
  // .symtab has the local functions .dynsym lacks.
  EXPECT_GT(completed.symbols.size(), dynsym_only.symbols.size());
  EXPECT_EQ(completed.segments.size(), dynsym_only.segments.size());
}

}  // namespace
}  // namespace perfwatch::collector
