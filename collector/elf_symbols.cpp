#include "collector/elf_symbols.h"

#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <sys/stat.h>
#include <libelf.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <tuple>

#include "common/log.h"

namespace perfwatch::collector {
namespace {

constexpr std::string_view kGnuNoteName{"GNU", 4};  // n_namesz counts the NUL

std::string elf_error() { return elf_errmsg(-1); }

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    hex.push_back(kDigits[bytes[i] >> 4]);
    hex.push_back(kDigits[bytes[i] & 0xf]);
  }
  return hex;
}

// Build-ids are 16 or 20 bytes (sometimes 32); a longer note is no build-id but would make a long cache key.
constexpr std::size_t kMaxBuildIdBytes = 64;
// Symbol names held per binary: a crafted file can point a million symbols at one long string.
constexpr std::size_t kMaxSymbolNameBytes = 256 << 20;
// A debug file's CRC is computed by reading it whole: not for files larger than this.
constexpr off_t kMaxCrcFileBytes = off_t{4} << 30;

// The build-id note in one block of notes, "" when it has none.
std::string find_build_id_note(Elf_Data* data) {
  if (data == nullptr) return {};
  GElf_Nhdr note;
  std::size_t name_at = 0, desc_at = 0;
  for (std::size_t at = 0; (at = gelf_getnote(data, at, &note, &name_at, &desc_at)) > 0;) {
    const char* base = static_cast<const char*>(data->d_buf);
    if (note.n_type == NT_GNU_BUILD_ID && std::string_view(base + name_at, note.n_namesz) == kGnuNoteName &&
        note.n_descsz <= kMaxBuildIdBytes)
      return to_hex(reinterpret_cast<const unsigned char*>(base + desc_at), note.n_descsz);
  }
  return {};
}

std::string directory_of(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : path.substr(0, slash);
}

// A path as the kernel writes it in /proc/PID/maps: absolute, without `.` or `..` components.
bool plain_absolute_path(const std::string& path) {
  return path.starts_with('/') && path.find("/../") == std::string::npos && path.find("/./") == std::string::npos &&
         !path.ends_with("/..") && !path.ends_with("/.");
}

struct DebugFile {
  ElfFile elf;
  std::string path;
};

std::optional<DebugFile> open_debug_file(Result<UniqueFd> fd, const std::string& path) {
  if (!fd) {
    log::debug("no debug file there", {{"path", path}, {"error", fd.error().message}});
    return std::nullopt;
  }
  auto elf = ElfFile::open(std::move(*fd));
  if (!elf) {
    log::debug("unreadable debug file", {{"path", path}, {"error", elf.error().message}});
    return std::nullopt;
  }
  return DebugFile{std::move(*elf), path};
}

std::optional<DebugFile> find_by_build_id(const std::string& build_id, const DebugInfoSearch& search) {
  if (build_id.size() < 3) return std::nullopt;
  for (const std::string& dir : search.debug_dirs) {
    std::string path = dir + "/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug";
    auto debug = open_debug_file(open_regular(path), path);
    if (debug && debug->elf.build_id() == build_id) return debug;
  }
  return std::nullopt;
}

// A debuglink names a file only; a stale one left beside a rebuilt binary must not be used.
bool matches(const DebugFile& debug, const std::string& build_id, const Debuglink& link) {
  std::string debug_build_id = debug.elf.build_id();
  if (!build_id.empty() && !debug_build_id.empty()) return debug_build_id == build_id;
  auto crc = debug.elf.crc32();
  return crc && *crc == link.crc;
}

std::optional<DebugFile> find_by_debuglink(const ElfFile& file, const std::string& build_id,
                                           const DebugInfoSearch& search) {
  auto link = file.debuglink();
  // The link names a file, nothing else; the binary's directory is the kernel's, never relative.
  if (!link || link->file.find('/') != std::string::npos || link->file == "." || link->file == ".." ||
      link->file.size() > NAME_MAX || !plain_absolute_path(search.binary_path))
    return std::nullopt;
  const std::string dir = directory_of(search.binary_path);
  const auto check = [&](std::optional<DebugFile> debug) {
    return debug && matches(*debug, build_id, *link) ? std::move(debug) : std::nullopt;
  };
  // Beside the binary and in its .debug/, as the process sees them (else as we do), never leaving them.
  for (const std::string& relative : {link->file, ".debug/" + link->file}) {
    Result<UniqueFd> fd = make_error("no process root");
    if (!search.process_root.empty()) fd = open_regular_beneath(search.process_root + dir, relative);
    if (!fd) fd = open_regular_beneath(dir, relative);
    if (auto debug = check(open_debug_file(std::move(fd), dir + "/" + relative))) return debug;
  }
  for (const std::string& debug_dir : search.debug_dirs) {
    const std::string path = debug_dir + (dir == "/" ? "" : dir) + "/" + link->file;
    if (auto debug = check(open_debug_file(open_regular(path), path))) return debug;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> file_offset_to_vaddr(std::span<const LoadSegment> segments, std::uint64_t offset) {
  for (const LoadSegment& s : segments)
    if (offset >= s.offset && offset - s.offset < s.filesz) return offset - s.offset + s.vaddr;
  return std::nullopt;
}

std::optional<std::uint64_t> vaddr_to_file_offset(std::span<const LoadSegment> segments, std::uint64_t vaddr) {
  for (const LoadSegment& s : segments)
    if (vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz) return vaddr - s.vaddr + s.offset;
  return std::nullopt;
}

void SymbolTable::Builder::add(std::string_view name, std::uint64_t addr, std::uint64_t size, std::uint64_t section_end,
                               Kind kind, Binding binding) {
  // Versioned definitions appear in .symtab as "name@VERSION" or "name@@VERSION".
  name = name.substr(0, name.find('@'));
  if (name.empty() || names_.size() + name.size() > kMaxSymbolNameBytes) return;
  auto kind_rank = static_cast<std::uint8_t>(kind == Kind::label ? 0 : size == 0 ? 1 : 2);
  auto binding_rank = static_cast<std::uint8_t>(binding == Binding::weak ? 0 : binding == Binding::local ? 1 : 2);
  auto underscores = static_cast<std::uint16_t>(std::min<std::size_t>(name.find_first_not_of('_'), 0xffff));
  candidates_.push_back({addr, size, section_end, static_cast<std::uint32_t>(names_.size()),
                         static_cast<std::uint32_t>(name.size()), kind_rank, binding_rank, underscores});
  names_.append(name);
}

SymbolTable SymbolTable::Builder::build() && {
  auto name_of = [this](const Candidate& c) { return std::string_view(names_).substr(c.name, c.name_size); };
  // By address, the preferred candidate first.
  auto order = [&](const Candidate& c) {
    return std::tuple(c.addr, -c.kind_rank, -c.binding_rank, c.underscores, -static_cast<std::int64_t>(c.name_size),
                      name_of(c));
  };
  std::sort(candidates_.begin(), candidates_.end(),
            [&](const Candidate& a, const Candidate& b) { return order(a) < order(b); });

  SymbolTable table;
  std::uint64_t covered_until = 0;  // end of the sized symbols so far
  for (std::size_t i = 0; i < candidates_.size(); ++i) {
    const Candidate& c = candidates_[i];
    if (i > 0 && candidates_[i - 1].addr == c.addr) continue;  // a less preferred alias
    std::uint64_t size = c.size;
    if (size == 0) {
      if (c.addr < covered_until) continue;
      std::size_t next = i + 1;
      while (next < candidates_.size() && candidates_[next].addr == c.addr) ++next;
      std::uint64_t end = next < candidates_.size() ? std::min(candidates_[next].addr, c.section_end) : c.section_end;
      size = end > c.addr ? end - c.addr : 0;
    }
    covered_until = std::max(covered_until, c.addr + size);
    std::uint64_t clamped = std::min<std::uint64_t>(size, std::numeric_limits<std::uint32_t>::max());
    table.entries_.push_back(
        {c.addr, static_cast<std::uint32_t>(clamped), static_cast<std::uint32_t>(table.names_.size())});
    table.names_.append(name_of(c));
    table.names_.push_back('\0');
  }
  table.entries_.shrink_to_fit();
  table.names_.shrink_to_fit();
  return table;
}

std::optional<std::string_view> SymbolTable::find(std::uint64_t addr) const {
  auto after = std::upper_bound(entries_.begin(), entries_.end(), addr,
                                [](std::uint64_t a, const Entry& e) { return a < e.addr; });
  if (after == entries_.begin()) return std::nullopt;
  const Entry& e = *std::prev(after);
  if (addr - e.addr >= e.size) return std::nullopt;
  return std::string_view(names_.c_str() + e.name);
}

Result<ElfFile> ElfFile::open(UniqueFd fd) {
  elf_version(EV_CURRENT);
  ElfFile file;
  file.elf_ = elf_begin(fd.get(), ELF_C_READ, nullptr);
  if (file.elf_ == nullptr) return make_error("elf_begin: " + elf_error());
  if (elf_kind(file.elf_) != ELF_K_ELF) return make_error("not an ELF file");
  file.fd_ = std::move(fd);
  return file;
}

Result<ElfFile> ElfFile::from_memory(std::span<const char> bytes) {
  elf_version(EV_CURRENT);
  ElfFile file;
  file.memory_.assign(bytes.begin(), bytes.end());
  file.elf_ = elf_memory(file.memory_.data(), file.memory_.size());
  if (file.elf_ == nullptr) return make_error("elf_memory: " + elf_error());
  if (elf_kind(file.elf_) != ELF_K_ELF) return make_error("not an ELF image");
  return file;
}

ElfFile::ElfFile(ElfFile&& other) noexcept
    : fd_(std::move(other.fd_)), memory_(std::move(other.memory_)), elf_(std::exchange(other.elf_, nullptr)) {}

ElfFile& ElfFile::operator=(ElfFile&& other) noexcept {
  if (this != &other) {
    if (elf_ != nullptr) elf_end(elf_);
    fd_ = std::move(other.fd_);
    memory_ = std::move(other.memory_);
    elf_ = std::exchange(other.elf_, nullptr);
  }
  return *this;
}

ElfFile::~ElfFile() {
  if (elf_ != nullptr) elf_end(elf_);
}

std::string ElfFile::build_id() const {
  // Sections first: a separate debug file keeps the note section but not the data PT_NOTE points to.
  bool has_sections = false;
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf_, scn)) != nullptr;) {
    has_sections = true;
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_NOTE) continue;
    if (std::string id = find_build_id_note(elf_getdata(scn, nullptr)); !id.empty()) return id;
  }
  if (has_sections) return {};
  std::size_t count = 0;
  if (elf_getphdrnum(elf_, &count) != 0) return {};
  for (std::size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf_, static_cast<int>(i), &phdr) == nullptr || phdr.p_type != PT_NOTE) continue;
    Elf_Data* data = elf_getdata_rawchunk(elf_, static_cast<int64_t>(phdr.p_offset), phdr.p_filesz,
                                          phdr.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
    if (std::string id = find_build_id_note(data); !id.empty()) return id;
  }
  return {};
}

std::optional<Debuglink> ElfFile::debuglink() const {
  std::size_t names_index = 0;
  if (elf_getshdrstrndx(elf_, &names_index) != 0) return std::nullopt;
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf_, scn)) != nullptr;) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_PROGBITS) continue;
    const char* name = elf_strptr(elf_, names_index, shdr.sh_name);
    if (name == nullptr || std::strcmp(name, ".gnu_debuglink") != 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr || data->d_buf == nullptr) return std::nullopt;
    // The file name, NUL-padded to a multiple of 4, then the CRC in the file's byte order.
    const char* bytes = static_cast<const char*>(data->d_buf);
    std::size_t name_size = strnlen(bytes, data->d_size);
    std::size_t crc_at = (name_size + 4) & ~std::size_t{3};
    if (name_size == 0 || crc_at + 4 > data->d_size) return std::nullopt;
    Debuglink link{std::string(bytes, name_size), 0};
    std::memcpy(&link.crc, bytes + crc_at, 4);
    bool big_endian_file = elf_getident(elf_, nullptr)[EI_DATA] == ELFDATA2MSB;
    if (big_endian_file != (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)) link.crc = __builtin_bswap32(link.crc);
    return link;
  }
  return std::nullopt;
}

std::vector<LoadSegment> ElfFile::load_segments() const {
  std::vector<LoadSegment> segments;
  std::size_t count = 0;
  if (elf_getphdrnum(elf_, &count) != 0) return segments;
  for (std::size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    std::uint64_t end = 0;
    // A segment that wraps around the address space or the file is no segment (found by fuzz_elf: offsets
    // and addresses translated through it did not translate back).
    if (gelf_getphdr(elf_, static_cast<int>(i), &phdr) != nullptr && phdr.p_type == PT_LOAD &&
        !__builtin_add_overflow(phdr.p_vaddr, phdr.p_filesz, &end) &&
        !__builtin_add_overflow(phdr.p_offset, phdr.p_filesz, &end))
      segments.push_back({phdr.p_offset, phdr.p_vaddr, phdr.p_filesz});
  }
  return segments;
}

bool ElfFile::has_symtab() const {
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf_, scn)) != nullptr;) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) != nullptr && shdr.sh_type == SHT_SYMTAB) return true;
  }
  return false;
}

// Calls f(symbol, name) for each named symbol of .symtab and .dynsym defined in a section.
template <typename F>
void for_each_defined_symbol(Elf* elf, F&& f) {
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM) ||
        shdr.sh_entsize == 0)
      continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    // A separate debug file keeps .dynsym's header but not its contents.
    if (data == nullptr || data->d_buf == nullptr) continue;
    std::size_t count = shdr.sh_size / shdr.sh_entsize;
    for (std::size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) break;
      if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= SHN_LORESERVE || sym.st_value == 0) continue;
      const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (name != nullptr) f(sym, name);
    }
  }
}

bool ElfFile::has_section(std::string_view name) const {
  std::size_t names_index = 0;
  if (elf_getshdrstrndx(elf_, &names_index) != 0) return false;
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf_, scn)) != nullptr;) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    const char* section = elf_strptr(elf_, names_index, shdr.sh_name);
    if (section != nullptr && section == name) return true;
  }
  return false;
}

void ElfFile::add_symbols(SymbolTable::Builder& builder) const {
  struct Section {
    std::uint64_t end = 0;
    bool code = false;
  };
  std::size_t section_count = 0;
  if (elf_getshdrnum(elf_, &section_count) != 0) return;
  std::vector<Section> sections(section_count);
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf_, scn)) != nullptr;) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) != nullptr)
      sections[elf_ndxscn(scn)] = {shdr.sh_addr + shdr.sh_size, (shdr.sh_flags & SHF_EXECINSTR) != 0};
  }
  for_each_defined_symbol(elf_, [&](const GElf_Sym& sym, const char* name) {
    if (sym.st_shndx >= sections.size()) return;
    int type = GELF_ST_TYPE(sym.st_info);
    const Section& section = sections[sym.st_shndx];
    SymbolTable::Kind kind;
    if (type == STT_FUNC || type == STT_GNU_IFUNC)
      kind = SymbolTable::Kind::function;
    else if (type == STT_NOTYPE && section.code)
      kind = SymbolTable::Kind::label;
    else
      return;
    int bind = GELF_ST_BIND(sym.st_info);
    auto binding = bind == STB_WEAK    ? SymbolTable::Binding::weak
                   : bind == STB_LOCAL ? SymbolTable::Binding::local
                                       : SymbolTable::Binding::global;
    builder.add(name, sym.st_value, sym.st_size, section.end, kind, binding);
  });
}

Result<std::uint32_t> ElfFile::crc32() const {
  struct stat st {};
  if (fstat(fd_.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxCrcFileBytes)
    return make_error("not a regular file of at most 4 GiB");
  uLong crc = ::crc32(0L, Z_NULL, 0);
  std::vector<unsigned char> buf(1 << 16);
  for (off_t at = 0;;) {
    ssize_t n = ::pread(fd_.get(), buf.data(), buf.size(), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(std::string("read: ") + std::strerror(errno));
    if (n == 0) return static_cast<std::uint32_t>(crc);
    crc = ::crc32(crc, buf.data(), static_cast<uInt>(n));
    at += n;
  }
}

std::map<std::string, ElfSymbol, std::less<>> ElfFile::find_symbols(std::span<const std::string_view> names,
                                                                    SymbolTypes types) const {
  std::map<std::string, ElfSymbol, std::less<>> found;
  for_each_defined_symbol(elf_, [&](const GElf_Sym& sym, const char* sym_name) {
    if (types == SymbolTypes::functions && GELF_ST_TYPE(sym.st_info) != STT_FUNC) return;
    // Versioned definitions appear in .symtab as "name@VERSION" or "name@@VERSION".
    const std::string_view name = std::string_view(sym_name).substr(0, std::string_view(sym_name).find('@'));
    if (std::find(names.begin(), names.end(), name) != names.end())
      found.try_emplace(std::string(name), ElfSymbol{sym.st_value, sym.st_size});
  });
  return found;
}

Result<std::vector<unsigned char>> ElfFile::read_vaddr(std::uint64_t vaddr, std::size_t size) const {
  auto missing = [&] { return make_error("no file contents at virtual address " + std::to_string(vaddr)); };
  const std::vector<LoadSegment> segments = load_segments();
  // Every byte must be file contents, contiguous in the file.
  const std::optional<std::uint64_t> first = vaddr_to_file_offset(segments, vaddr);
  const std::optional<std::uint64_t> last = vaddr_to_file_offset(segments, vaddr + size - 1);
  if (size == 0 || !first || !last || *last - *first != size - 1) return missing();
  std::vector<unsigned char> bytes(size);
  if (!memory_.empty()) {
    if (*first + size > memory_.size()) return missing();
    std::memcpy(bytes.data(), memory_.data() + *first, size);
    return bytes;
  }
  ssize_t n;
  do n = ::pread(fd_.get(), bytes.data(), size, static_cast<off_t>(*first));
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(size)) return missing();
  return bytes;
}

bool ElfFile::keeps_frame_pointers() const {
  GElf_Ehdr ehdr;
  if (gelf_getehdr(elf_, &ehdr) == nullptr || ehdr.e_machine != EM_X86_64) return false;
  // The larger functions: small ones (stubs, tail calls) often have no frame even when built with one.
  // The toolchain's start-up code (crt*.o) is the same in every binary: it tells nothing.
  static constexpr std::string_view kStartupCode[] = {"_start", "_init", "_fini", "deregister_tm_clones",
                                                      "register_tm_clones", "__do_global_dtors_aux", "frame_dummy",
                                                      "_dl_relocate_static_pie"};
  std::map<std::uint64_t, std::uint64_t> by_address;
  for_each_defined_symbol(elf_, [&](const GElf_Sym& sym, const char* name) {
    if (GELF_ST_TYPE(sym.st_info) == STT_FUNC && sym.st_size >= 16 &&
        std::find(std::begin(kStartupCode), std::end(kStartupCode), std::string_view(name)) == std::end(kStartupCode))
      by_address.emplace(sym.st_value, sym.st_size);
  });
  std::vector<std::pair<std::uint64_t, std::uint64_t>> functions(by_address.begin(), by_address.end());
  std::sort(functions.begin(), functions.end(), [](auto a, auto b) { return a.second > b.second; });
  functions.resize(std::min<std::size_t>(functions.size(), 64));
  std::size_t judged = 0, with_frame = 0;
  for (auto [addr, size] : functions) {
    auto code = read_vaddr(addr, 8);
    if (!code) continue;
    const unsigned char* p = code->data();
    if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa) p += 4;  // endbr64
    ++judged;
    // push %rbp; mov %rsp,%rbp (either encoding of the mov)
    if (p[0] == 0x55 && p[1] == 0x48 && (p[2] == 0x89 || p[2] == 0x8b) && (p[3] == 0xe5 || p[3] == 0xec)) ++with_frame;
  }
  // Without frame pointers, compilers still set one up in the odd function (alloca, VLAs).
  return judged >= 3 && with_frame * 2 > judged;
}

std::size_t ElfImage::memory_bytes() const {
  return sizeof(*this) + build_id.capacity() + segments.capacity() * sizeof(LoadSegment) + symbols.memory_bytes() +
         debug_file.capacity();
}

std::optional<std::uint64_t> find_function(const ElfFile& file, const DebugInfoSearch& search, std::string_view name) {
  const std::string_view names[] = {name};
  auto address_in = [&](const ElfFile& elf) -> std::optional<std::uint64_t> {
    auto found = elf.find_symbols(names, SymbolTypes::functions);
    return found.empty() ? std::nullopt : std::optional(found.begin()->second.value);
  };
  if (auto address = address_in(file)) return address;
  if (file.has_symtab()) return std::nullopt;
  const std::string build_id = file.build_id();
  auto debug = find_by_build_id(build_id, search);
  if (!debug) debug = find_by_debuglink(file, build_id, search);
  return debug ? address_in(debug->elf) : std::nullopt;
}

ElfImage load_elf_image(const ElfFile& file, const DebugInfoSearch& search) {
  ElfImage image;
  image.build_id = file.build_id();
  image.segments = file.load_segments();
  SymbolTable::Builder builder;
  file.add_symbols(builder);
  if (!file.has_symtab()) {
    auto debug = find_by_build_id(image.build_id, search);
    if (!debug) debug = find_by_debuglink(file, image.build_id, search);
    if (debug) {
      debug->elf.add_symbols(builder);
      image.debug_file = std::move(debug->path);
    }
  }
  image.symbols = std::move(builder).build();
  image.frame_pointers = file.keeps_frame_pointers();
  return image;
}

}  // namespace perfwatch::collector
