#include "dashboard/tree_cache.h"

namespace perfwatch::dashboard {

std::shared_ptr<const CachedTree> TreeCache::get(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void TreeCache::put(const std::string& key, std::shared_ptr<const CachedTree> value) {
  const std::size_t size = key.size() + value->json.size();
  if (size > max_bytes_ / 4) return;
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= it->first.size() + it->second->second->json.size();
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.emplace_front(key, std::move(value));
  index_[key] = lru_.begin();
  bytes_ += size;
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    const Entry& last = lru_.back();
    bytes_ -= last.first.size() + last.second->json.size();
    index_.erase(last.first);
    lru_.pop_back();
  }
}

std::size_t TreeCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace perfwatch::dashboard
