#include "collector/code_identity.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "collector/elf_symbols.h"
#include "collector/files.h"
#include "collector/proc_maps.h"

namespace perfwatch::collector {
namespace {

// Build-ids of binaries no longer mapped are forgotten past this many.
constexpr std::size_t max_cached_build_ids = 4096;

}  // namespace

Result<ProcessCode> CodeReader::binaries(std::int32_t pid) {
  const std::string proc_pid = proc_root_ + "/" + std::to_string(pid);
  auto maps = read_file(proc_pid + "/maps");
  if (!maps) return maps.error();
  char exe[4096];
  const ssize_t n = ::readlink((proc_pid + "/exe").c_str(), exe, sizeof exe - 1);
  if (n < 0) return make_error(proc_pid + "/exe: " + std::strerror(errno));
  ProcessCode code;
  code.executable.assign(exe, static_cast<std::size_t>(n));
  if (code.executable.ends_with(" (deleted)")) code.executable.resize(code.executable.size() - 10);
  if (build_ids_.size() > max_cached_build_ids) build_ids_.clear();
  for (const MapEntry& e : parse_maps(*maps)) {
    if (!e.executable || !e.file_backed() || code.binaries.contains(e.path)) continue;
    auto fd = open_mapped_file(proc_root_, pid, e);
    struct stat st {};
    if (!fd || fstat(fd->get(), &st) != 0) continue;
    const std::string identity = file_identity(st);
    auto cached = build_ids_.find(identity);
    if (cached == build_ids_.end()) {
      auto elf = ElfFile::open(std::move(*fd));
      cached = build_ids_.emplace(identity, elf ? elf->build_id() : std::string()).first;
    }
    code.binaries[e.path] = cached->second.empty() ? "file:" + identity : "build-id:" + cached->second;
  }
  return code;
}

Result<std::string> CodeReader::file(std::int32_t pid, const std::string& path) const {
  struct stat st {};
  // Relative to the process's working directory when not absolute, as Python records a script it
  // was started on.
  const std::string in_root =
      proc_root_ + "/" + std::to_string(pid) + (path.starts_with('/') ? "/root" : "/cwd/") + path;
  if (::stat(in_root.c_str(), &st) != 0) return make_error(in_root + ": " + std::strerror(errno));
  return "file:" + file_identity(st);
}

}  // namespace perfwatch::collector
