#pragma once
// Flame-graph trees already serialized, keyed by what they were computed from, bounded in bytes, least
// recently used first out. Keys carry the data's fingerprint (storage::Query::fingerprint), so an entry
// is never stale: new data makes a new key and the old entry ages out. Many viewers of one dashboard,
// and one viewer's "last hour" until the next window lands, cost one computation.
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace perfwatch::dashboard {

struct CachedTree {
  std::uint64_t total = 0;       // samples in the tree (the comparison's, for a diff)
  std::uint64_t base_total = 0;  // a diff's base
  std::string json;              // the tree, serialized
};

class TreeCache {
 public:
  explicit TreeCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  std::shared_ptr<const CachedTree> get(const std::string& key);
  // Entries larger than a quarter of the bound are not kept: they would evict everything else.
  void put(const std::string& key, std::shared_ptr<const CachedTree> value);

  std::size_t bytes() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const CachedTree>>;
  std::size_t max_bytes_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  std::size_t bytes_ = 0;
};

}  // namespace perfwatch::dashboard
