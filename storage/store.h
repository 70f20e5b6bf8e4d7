#pragma once
// Where closed windows go. The writer talks to a Store through this interface so its spooling
// logic can be tested without a database; PgStore is the PostgreSQL implementation.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <pqxx/connection>
#include <pqxx/transaction_base>
#include <string>

#include "common/duration.h"
#include "common/profile.h"
#include "common/result.h"

namespace perfwatch::storage {

// Why a window was not written, which decides what the writer does with it.
enum class WriteFailure {
  // The database's state: connection, locks, serialization, rights, disk, timeouts, restarts. It
  // changes, so the window is kept and tried again.
  transient,
  // The window's own content (data, constraints, limits): trying again cannot help, it is set aside.
  unwritable,
  // The window lies far ahead of the database's clock (this host's clock is wrong): set aside.
  implausible_time,
};

struct WriteError {
  WriteFailure kind = WriteFailure::transient;
  std::string message;
};

using WriteResult = Result<void, WriteError>;

class Store {
 public:
  virtual ~Store() = default;
  // Writes one window (targets, frames, stacks, sample counts) in one transaction. Idempotent per
  // (host, target, window start): writing a window again replaces what was written for it.
  virtual WriteResult write_window(const profile::WindowProfile& window) = 0;
  // Drops the daily partitions whose whole day ended before now - retention, where now is the
  // earlier of `now` (this host's clock) and the database's clock, so that a host whose clock runs
  // ahead cannot drop what other hosts still keep. Returns how many partition tables were dropped.
  virtual Result<int> apply_retention(Duration retention, profile::TimePoint now) = 0;
};

// Makes a connected Store; called again by the writer after a failure.
using StoreFactory = std::function<Result<std::unique_ptr<Store>>()>;

struct ConnectOptions {
  std::string uri;            // libpq URI or key=value conninfo
  std::string password_file;  // optional; see resolve_conninfo
  // PostgreSQL's statement_timeout on the connection (0: the server's): a query past it is cancelled.
  std::chrono::milliseconds statement_timeout{0};
};

// Connects, and applies pending migrations when asked (writers do; readers may lack the rights).
Result<std::unique_ptr<pqxx::connection>> connect_database(const ConnectOptions& options, bool migrate = true);

// The id of the host of this name, inserted when new (safe against other hosts inserting it meanwhile).
int ensure_host(pqxx::transaction_base& tx, const std::string& name);

class PgStore final : public Store {
 public:
  // Ids of frames and stacks known to be in the database are remembered (up to this many of each)
  // so they are not sent again with every window.
  static constexpr std::size_t default_known_ids = 1 << 20;
  // A window starting further than this ahead of the database's clock is refused (implausible_time):
  // no partition is made for it. Generous, for hosts whose clocks are merely off by some hours.
  static constexpr std::chrono::hours max_ahead_of_database{24};
  // A statement that runs longer (a lock held elsewhere, a stuck server) fails as transient instead of
  // stalling the writer.
  static constexpr std::chrono::minutes statement_timeout{2};

  static Result<std::unique_ptr<PgStore>> connect(const ConnectOptions& options,
                                                  std::size_t known_ids_capacity = default_known_ids);
  ~PgStore() override;

  WriteResult write_window(const profile::WindowProfile& window) override;
  Result<int> apply_retention(Duration retention, profile::TimePoint now) override;

  // The factory the daemon's writer uses.
  static StoreFactory factory(ConnectOptions options);

 private:
  struct Impl;
  explicit PgStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace perfwatch::storage
