#include "collector/watched_map.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "collector/bpf_skeleton.h"
#include "common/log.h"

namespace perfwatch::collector {

static_assert(sizeof(watch_value) == 16);

Result<std::unique_ptr<WatchedMap>> WatchedMap::create(std::uint32_t max_entries) {
  if (max_entries == 0) return make_error("watched map: size must be > 0");
  const int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "watched", sizeof(std::uint32_t), sizeof(watch_value),
                                max_entries, nullptr);
  if (fd < 0) return libbpf_error("watched map: create", fd);
  return std::unique_ptr<WatchedMap>(new WatchedMap(UniqueFd(fd)));
}

Result<void> WatchedMap::watch(std::int32_t tgid, std::uint32_t generation, std::uint32_t target, bool profile) {
  const auto key = static_cast<std::uint32_t>(tgid);
  const watch_value value{generation, target, profile ? WATCH_PROFILE : 0u, 0};
  if (bpf_map_update_elem(fd_.get(), &key, &value, BPF_ANY) != 0)
    return libbpf_error("watch pid " + std::to_string(tgid), -errno);
  return {};
}

void WatchedMap::unwatch(std::int32_t tgid) {
  const auto key = static_cast<std::uint32_t>(tgid);
  // ENOENT is fine: the exit probe removes a process that is gone.
  if (bpf_map_delete_elem(fd_.get(), &key) != 0 && errno != ENOENT)
    log::warn("unwatch", {{"pid", tgid}, {"error", std::strerror(errno)}});
}

}  // namespace perfwatch::collector
