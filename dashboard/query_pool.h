#pragma once
// A small pool of storage::Query connections for the HTTP threads: a pqxx connection serves one
// thread at a time, and opening one per request would cost more than most queries.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "common/result.h"
#include "storage/query.h"

namespace perfwatch::dashboard {

class QueryPool {
 public:
  using Factory = std::function<Result<std::unique_ptr<storage::Query>>()>;

  // At most `size` connections, opened on demand; acquire() waits up to `wait` for a free one.
  QueryPool(Factory factory, std::size_t size, std::chrono::milliseconds wait);
  static Factory connect_with(storage::ConnectOptions options);

  class Lease {
   public:
    Lease(QueryPool* pool, std::unique_ptr<storage::Query> query) : pool_(pool), query_(std::move(query)) {}
    Lease(Lease&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)), query_(std::move(other.query_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    storage::Query* operator->() const { return query_.get(); }
    storage::Query& operator*() const { return *query_; }
    // After a failed query: the connection may be broken, so close it instead of handing it out again.
    void discard() { query_.reset(); }

   private:
    QueryPool* pool_;
    std::unique_ptr<storage::Query> query_;
  };

  // A connection, or why none could be had (database down, every connection busy for `wait`).
  Result<Lease> acquire();

 private:
  void release(std::unique_ptr<storage::Query> query);

  Factory factory_;
  std::size_t size_;
  std::chrono::milliseconds wait_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<storage::Query>> idle_;
  std::size_t open_ = 0;  // idle + leased + being opened
};

}  // namespace perfwatch::dashboard
