#pragma once
// What symbolization needs from an ELF file, read with libelf: the PT_LOAD segments (file offset ->
// virtual address), the build-id, .gnu_debuglink, and the functions of .symtab and .dynsym, kept
// as one compact sorted table. Separate debug info is found by build-id or .gnu_debuglink.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "collector/files.h"
#include "common/result.h"

typedef struct Elf Elf;  // libelf's handle, as <libelf.h> declares it

namespace perfwatch::collector {

struct LoadSegment {
  std::uint64_t offset = 0;  // p_offset
  std::uint64_t vaddr = 0;   // p_vaddr
  std::uint64_t filesz = 0;  // p_filesz: code lies only in the file-backed part
};

// The ELF virtual address of a file offset, through the PT_LOAD segment holding it.
std::optional<std::uint64_t> file_offset_to_vaddr(std::span<const LoadSegment> segments, std::uint64_t offset);
// The reverse: the file offset of an ELF virtual address (what a uprobe is attached at).
std::optional<std::uint64_t> vaddr_to_file_offset(std::span<const LoadSegment> segments, std::uint64_t vaddr);

// Sorted, non-overlapping address ranges with names: one blob of NUL-terminated names and 16 bytes
// per symbol, since a daemon keeps many binaries' tables for a long time.
class SymbolTable {
 public:
  enum class Kind : std::uint8_t { label, function };  // label: STT_NOTYPE in code
  enum class Binding : std::uint8_t { local, weak, global };

  class Builder {
   public:
    // section_end bounds how far a symbol without a size may reach. A "@VERSION" suffix is dropped.
    void add(std::string_view name, std::uint64_t addr, std::uint64_t size, std::uint64_t section_end, Kind kind,
             Binding binding);
    // Where several symbols start at one address, keeps the one perf would show: a function with a
    // size, then one without, then a label; then not weak, global, the fewest leading underscores and
    // the longest name. A symbol without a size reaches to the next symbol or its section's end; one
    // inside a sized function is dropped (the function names that code).
    SymbolTable build() &&;

   private:
    struct Candidate {
      std::uint64_t addr;
      std::uint64_t size;
      std::uint64_t section_end;
      std::uint32_t name;  // into names_
      std::uint32_t name_size;
      std::uint8_t kind_rank;     // higher is preferred
      std::uint8_t binding_rank;  // higher is preferred
      std::uint16_t underscores;  // leading ones
    };
    std::vector<Candidate> candidates_;
    std::string names_;
  };

  // The name of the symbol whose range holds addr, as stored in the file (mangled); a view of a
  // NUL-terminated string that lives as long as the table.
  std::optional<std::string_view> find(std::uint64_t addr) const;
  std::size_t size() const { return entries_.size(); }
  std::size_t memory_bytes() const { return entries_.capacity() * sizeof(Entry) + names_.capacity(); }

 private:
  struct Entry {
    std::uint64_t addr;
    std::uint32_t size;
    std::uint32_t name;  // offset into names_
  };
  std::vector<Entry> entries_;
  std::string names_;
};

// A symbol found by name: its value (an ELF virtual address for data and code) and size.
struct ElfSymbol {
  std::uint64_t value = 0;
  std::uint64_t size = 0;
};

// Which symbols a name lookup considers: any type (data too), or functions (STT_FUNC) only.
enum class SymbolTypes { any, functions };

struct Debuglink {
  std::string file;       // a file name, no directory
  std::uint32_t crc = 0;  // CRC-32 of the whole debug file
};

// An open ELF file. Files are read with pread, never mmap: a file truncated while it is read gives an
// error instead of SIGBUS.
class ElfFile {
 public:
  static Result<ElfFile> open(UniqueFd fd);
  // For images that are not files (the vDSO); keeps its own copy of the bytes.
  static Result<ElfFile> from_memory(std::span<const char> bytes);
  ElfFile(ElfFile&& other) noexcept;
  ElfFile& operator=(ElfFile&& other) noexcept;
  ~ElfFile();

  // Lower-case hex of the NT_GNU_BUILD_ID note; "" when there is none.
  std::string build_id() const;
  std::optional<Debuglink> debuglink() const;
  std::vector<LoadSegment> load_segments() const;
  bool has_symtab() const;
  bool has_section(std::string_view name) const;
  // Adds the functions of .symtab and .dynsym (both: a .symtab may omit what only .dynsym has).
  void add_symbols(SymbolTable::Builder& builder) const;
  // CRC-32 of the whole file, as .gnu_debuglink records it.
  Result<std::uint32_t> crc32() const;
  // The symbols of .symtab and .dynsym defined in a section with these exact names ("@VERSION"
  // ignored), the first found of each; absent names are missing. Unlike SymbolTable, keeps every alias.
  std::map<std::string, ElfSymbol, std::less<>> find_symbols(std::span<const std::string_view> names,
                                                             SymbolTypes types = SymbolTypes::any) const;
  // size bytes of the file-backed contents at ELF virtual address vaddr.
  Result<std::vector<unsigned char>> read_vaddr(std::uint64_t vaddr, std::size_t size) const;
  // Whether the functions set up a frame pointer (push %rbp; mov %rsp,%rbp), judged from the
  // prologues of up to 64 of the larger functions in .dynsym/.symtab; false when there are too few
  // to judge by, or the file is not x86-64.
  bool keeps_frame_pointers() const;

 private:
  ElfFile() = default;
  UniqueFd fd_;
  std::vector<char> memory_;  // backs elf_ for from_memory(); a vector keeps its buffer when moved
  Elf* elf_ = nullptr;
};

// What is cached per binary.
struct ElfImage {
  std::string build_id;
  std::vector<LoadSegment> segments;
  SymbolTable symbols;
  std::string debug_file;  // the separate debug file the symbols were completed from; "" when none
  // Its functions keep a frame pointer (see keeps_frame_pointers): the caller of a frame in this
  // binary, as a frame-pointer unwinder finds it, is reliable.
  bool frame_pointers = false;

  std::size_t memory_bytes() const;
};

// Where separate debug info may be. What a binary names (its .gnu_debuglink, a plain file name) is opened
// only as a regular file, never blocking, and only below the binary's own directory (resolved so that no
// `..` or symbolic link leads out of it) or below a debug directory.
struct DebugInfoSearch {
  std::vector<std::string> debug_dirs;  // e.g. /usr/lib/debug, read in the daemon's own mount namespace
  std::string binary_path;              // as the process sees it
  // The process's root ("/proc/PID/root"), under which the binary's directory is looked for first, then in
  // ours; "" for ours only.
  std::string process_root;
};

// The function's address in file, else in its separate debug info (found as load_elf_image does).
std::optional<std::uint64_t> find_function(const ElfFile& file, const DebugInfoSearch& search, std::string_view name);

// Reads file's segments and symbols. Without a .symtab, completes them from separate debug info:
// <debug_dir>/.build-id/xx/rest.debug, then .gnu_debuglink beside the binary, in its .debug/ and
// under each debug_dir (GDB's order); a debuglink file must match the build-id or the CRC.
ElfImage load_elf_image(const ElfFile& file, const DebugInfoSearch& search);

}  // namespace perfwatch::collector
