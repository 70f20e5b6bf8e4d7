#pragma once
// Shared by the storage tests: a private database per test on the PostgreSQL named by
// PERFWATCH_TEST_PG (tests fail, never skip, when it is unset), and sample windows.
#include <gtest/gtest.h>

#include <pqxx/connection>
#include <string>

#include "common/profile.h"
#include "storage/store.h"

namespace perfwatch::test {

// Creates a fresh database for the test and drops it afterwards.
class PgTest : public testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  storage::ConnectOptions connect_options() const { return {uri_, ""}; }
  // A plain connection for checking what was stored.
  pqxx::connection connection() const;
  std::int64_t count(const std::string& sql) const;

  std::string uri_;

 private:
  std::string admin_uri_;
  std::string database_;
};

profile::TimePoint at(std::int64_t unix_seconds);

// A window with targets "api" and "worker": api has main;parse;read (3) and main;serve (2),
// worker has main;loop (5); stats.samples = 10.
profile::WindowProfile sample_window(const std::string& host, profile::TimePoint start);

profile::LatencyHistogram histogram_of(std::initializer_list<std::uint64_t> ms, std::uint64_t threshold_ms);
// Operations: api's "lookup" (uprobe, T1 = 100 ms) with calls of lookup_ms, worker's "reads" (syscall, own
// 20 ms threshold) with 1, 2 and 30 ms; and latency stats {7, 1, 2, 3, 100, 90, 5, 2, 3, 1}.
void add_sample_operations(profile::WindowProfile& w, std::initializer_list<std::uint64_t> lookup_ms);
// Cache rows for targets 0 and 1 (page cache, an application cache) and the host-wide cache state.
void add_sample_caches(profile::WindowProfile& w, std::uint64_t page_lookups, std::uint64_t page_misses);

}  // namespace perfwatch::test
