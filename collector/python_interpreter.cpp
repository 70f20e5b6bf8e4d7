#include "collector/python_interpreter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <tuple>

#include "collector/elf_symbols.h"
#include "collector/files.h"

namespace perfwatch::collector {

struct PythonDetector::Binary {
  std::string error;  // unreadable: why
  std::optional<std::uint64_t> runtime;    // ELF virtual address of _PyRuntime
  std::optional<std::uint64_t> code_type;  // of PyCode_Type
  PythonBinaryFacts facts;
  std::vector<LoadSegment> segments;
};

namespace {

constexpr std::size_t kMaxCachedBinaries = 256;

std::string basename_of(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A number of at most 3 digits at the front of text, which it consumes.
std::optional<int> small_number(std::string_view& text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + std::min<std::size_t>(text.size(), 4), value);
  if (ec != std::errc{} || end == text.data() || value > 999) return std::nullopt;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return value;
}

// "MAJOR.MINOR" after the first "python" followed by one (python3.10, libpython3.10d.so): the name is
// the process owner's choice, so numbers too long for a version are no version.
std::optional<std::pair<int, int>> version_in_name(std::string_view name) {
  for (std::size_t at = name.find("python"); at != std::string_view::npos; at = name.find("python", at + 1)) {
    std::string_view rest = name.substr(at + 6);
    if (rest.empty() || !std::isdigit(static_cast<unsigned char>(rest.front()))) continue;
    const std::optional<int> major = small_number(rest);
    if (!major || !rest.starts_with('.')) continue;
    rest.remove_prefix(1);
    if (rest.empty() || !std::isdigit(static_cast<unsigned char>(rest.front()))) continue;
    if (const std::optional<int> minor = small_number(rest)) return std::pair{*major, *minor};
  }
  return std::nullopt;
}

}  // namespace

std::string PythonInterpreter::version() const {
  std::string v = std::to_string(major) + "." + std::to_string(minor);
  return micro >= 0 ? v + "." + std::to_string(micro) : v;
}

PythonVersionCheck check_python_version(const PythonBinaryFacts& facts) {
  PythonVersionCheck check;
  if (facts.py_version) {
    check.major = static_cast<int>((*facts.py_version >> 24) & 0xff);
    check.minor = static_cast<int>((*facts.py_version >> 16) & 0xff);
    check.micro = static_cast<int>((*facts.py_version >> 8) & 0xff);
  } else {
    // Before 3.11 there is no Py_Version: python3.10, libpython3.10.so.1.0, libpython3.10d.so, ...
    const auto version = version_in_name(facts.file_name);
    if (!version) {
      check.reason = "cannot tell the CPython version of " + facts.file_name + " (no Py_Version symbol, no version in its name)";
      return check;
    }
    std::tie(check.major, check.minor) = *version;
  }
  std::string version = std::to_string(check.major) + "." + std::to_string(check.minor) +
                        (check.micro >= 0 ? "." + std::to_string(check.micro) : "");
  if (facts.debug_build) {
    check.reason = "CPython " + version + " is a debug build, whose objects are laid out differently";
  } else if (facts.free_threaded) {
    check.reason = "CPython " + version + " is a free-threaded build, whose objects are laid out differently";
  } else if (!(check.layout = find_python_layout(check.major, check.minor))) {
    check.reason = "CPython " + version + " is not supported (supported: " + supported_python_versions() + ")";
  }
  return check;
}

std::optional<std::uint64_t> load_bias(const std::vector<MapEntry>& file_mappings, std::span<const LoadSegment> segments) {
  constexpr std::uint64_t kPageMask = ~std::uint64_t{0xfff};
  for (const MapEntry& m : file_mappings)
    for (const LoadSegment& s : segments)
      if ((s.offset & kPageMask) == m.pgoff) return m.start - (s.vaddr & kPageMask);
  return std::nullopt;
}

PythonDetector::PythonDetector(std::string proc_root) : proc_root_(std::move(proc_root)) {}
PythonDetector::~PythonDetector() = default;

const PythonDetector::Binary& PythonDetector::analyze(std::int32_t pid, const MapEntry& entry) {
  static const Binary kUnreadable{"unreadable", {}, {}, {}, {}};
  auto fd = open_mapped_file(proc_root_, pid, entry);
  if (!fd) return kUnreadable;
  struct stat st {};
  if (fstat(fd->get(), &st) != 0) return kUnreadable;
  std::string key = file_identity(st);
  if (auto it = binaries_.find(key); it != binaries_.end()) return it->second;
  if (binaries_.size() >= kMaxCachedBinaries) binaries_.clear();

  Binary& binary = binaries_[key];
  binary.facts.file_name = basename_of(entry.path);
  auto elf = ElfFile::open(std::move(*fd));
  if (!elf) {
    binary.error = elf.error().message;
    return binary;
  }
  static constexpr std::string_view kNames[] = {"_PyRuntime",           "PyCode_Type", "Py_Version",
                                                "_Py_NegativeRefcount", "_Py_RefTotal", "_Py_MergeZeroLocalRefcount"};
  auto symbols = elf->find_symbols(kNames);
  auto value = [&](std::string_view name) -> std::optional<std::uint64_t> {
    auto it = symbols.find(name);
    return it == symbols.end() ? std::nullopt : std::optional(it->second.value);
  };
  binary.runtime = value("_PyRuntime");
  binary.code_type = value("PyCode_Type");
  if (auto at = value("Py_Version")) {
    if (auto bytes = elf->read_vaddr(*at, sizeof(std::uint64_t))) {
      std::uint64_t v = 0;
      std::memcpy(&v, bytes->data(), sizeof v);
      binary.facts.py_version = v;
    }
  }
  binary.facts.debug_build = value("_Py_NegativeRefcount") || value("_Py_RefTotal");
  binary.facts.free_threaded = value("_Py_MergeZeroLocalRefcount").has_value();
  binary.segments = elf->load_segments();
  return binary;
}

Result<PythonDetection> PythonDetector::detect(std::int32_t pid) {
  std::string proc_pid = proc_root_ + "/" + std::to_string(pid);
  auto maps = read_file(proc_pid + "/maps");
  if (!maps) return maps.error();
  char exe_buf[4096];
  ssize_t n = readlink((proc_pid + "/exe").c_str(), exe_buf, sizeof exe_buf - 1);
  std::string exe = n > 0 ? std::string(exe_buf, static_cast<std::size_t>(n)) : "";
  if (exe.ends_with(" (deleted)")) exe.resize(exe.size() - 10);

  std::vector<MapEntry> entries = parse_maps(*maps);
  PythonDetection detection;
  std::vector<std::string> examined;
  for (const MapEntry& e : entries) {
    if (!e.file_backed() || !(e.path == exe || basename_of(e.path).starts_with("libpython"))) continue;
    if (std::find(examined.begin(), examined.end(), e.path) != examined.end()) continue;
    examined.push_back(e.path);
    const Binary& binary = analyze(pid, e);
    if (!binary.runtime) continue;
    detection.binary = e.path;
    PythonVersionCheck check = check_python_version(binary.facts);
    if (!check.layout) {
      detection.unsupported = check.reason;
      continue;
    }
    std::vector<MapEntry> file_mappings;
    for (const MapEntry& m : entries)
      if (m.path == e.path && m.inode == e.inode) file_mappings.push_back(m);
    auto bias = load_bias(file_mappings, binary.segments);
    auto index = python_walker_index(*check.layout);
    if (!bias || !index) {
      detection.unsupported = "cannot tell where " + e.path + " is loaded";
      continue;
    }
    PythonInterpreter interpreter;
    interpreter.layout = check.layout;
    interpreter.walker_index = *index;
    interpreter.major = check.major;
    interpreter.minor = check.minor;
    interpreter.micro = check.micro;
    interpreter.runtime = *bias + *binary.runtime;
    interpreter.code_type = binary.code_type ? *bias + *binary.code_type : 0;
    interpreter.binary = e.path;
    detection.interpreter = std::move(interpreter);
    detection.unsupported.clear();
    return detection;
  }
  return detection;
}

}  // namespace perfwatch::collector
