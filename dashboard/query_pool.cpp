#include "dashboard/query_pool.h"

namespace perfwatch::dashboard {

QueryPool::QueryPool(Factory factory, std::size_t size, std::chrono::milliseconds wait)
    : factory_(std::move(factory)), size_(std::max<std::size_t>(size, 1)), wait_(wait) {}

QueryPool::Factory QueryPool::connect_with(storage::ConnectOptions options) {
  return [options = std::move(options)] { return storage::Query::connect(options); };
}

QueryPool::Lease::~Lease() {
  if (pool_) pool_->release(std::move(query_));
}

Result<QueryPool::Lease> QueryPool::acquire() {
  std::unique_lock lock(mutex_);
  if (!freed_.wait_for(lock, wait_, [&] { return !idle_.empty() || open_ < size_; }))
    return make_error("every database connection stayed busy for " + std::to_string(wait_.count()) + " ms");
  if (!idle_.empty()) {
    auto query = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(query));
  }
  ++open_;
  lock.unlock();  // connecting takes a round trip or a timeout: not under the lock
  auto query = factory_();
  if (!query) {
    lock.lock();
    --open_;
    freed_.notify_one();
    return query.error();
  }
  return Lease(this, std::move(*query));
}

void QueryPool::release(std::unique_ptr<storage::Query> query) {
  std::lock_guard lock(mutex_);
  if (query) idle_.push_back(std::move(query));
  else --open_;
  freed_.notify_one();
}

}  // namespace perfwatch::dashboard
