#pragma once
// Writes closed windows to the database from a background thread, so a slow or unreachable
// database never stalls sampling. While the database cannot take them (unreachable, or refusing
// writes for a reason of its own: rights, locks, a full disk) windows go to the on-disk spool
// (bounded; drops past the bound are counted) and are written, oldest first, when it can. A window
// the database refuses for its own content or times is set aside in the spool's failed/ at once.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/duration.h"
#include "common/profile.h"
#include "storage/spool.h"
#include "storage/store.h"

namespace perfwatch::storage {

struct WriterOptions {
  ConnectOptions connect;
  std::string spool_dir;
  std::uint64_t spool_max_bytes = 256ull << 20;
  Duration retention = std::chrono::hours(24 * 14);
  std::chrono::seconds retention_interval{3600};
  std::chrono::milliseconds min_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  // Called from the writer thread after each window is stored (live or from the spool), e.g. to wake
  // what reads the stored windows.
  std::function<void(const profile::WindowProfile&)> on_written;
};

struct WriterStats {
  std::uint64_t written = 0;      // windows stored, live or replayed from the spool
  std::uint64_t spooled = 0;      // windows that went to the spool
  std::uint64_t dropped = 0;      // windows dropped because the spool was full or its disk failed
  std::uint64_t quarantined = 0;  // windows the database refused for their content or times, set aside in <spool>/failed
  std::uint64_t implausible_time = 0;  // of those, windows far ahead of the database's clock
  std::uint64_t write_errors = 0;
  std::uint64_t queue_depth = 0;  // windows in memory waiting for the writer
  std::uint64_t spool_windows = 0;
  std::uint64_t spool_bytes = 0;
  std::uint64_t quarantine_windows = 0;  // set aside now (part of the spool's bound)
  std::uint64_t quarantine_bytes = 0;
  bool connected = false;
  profile::TimePoint last_written_end{};  // end of the newest window written (database lag)
  // Start of the oldest window queued or spooled (not counting the one being written), if any.
  std::optional<profile::TimePoint> oldest_unwritten_start;
};

class WindowWriter {
 public:
  // Opens the spool (throws std::runtime_error when it cannot) and starts the writer thread.
  WindowWriter(WriterOptions options, StoreFactory factory);
  ~WindowWriter();  // stops the thread; call flush() first to keep what is queued
  WindowWriter(const WindowWriter&) = delete;
  WindowWriter& operator=(const WindowWriter&) = delete;

  void enqueue(profile::WindowProfile window);
  // Waits until every queued window is written (or spooled, while the database is unreachable);
  // spools what is still queued at the deadline.
  void flush(std::chrono::milliseconds timeout);
  WriterStats stats() const;

 private:
  void run();
  bool ensure_store(std::unique_lock<std::mutex>& lock);
  void write_queued(std::unique_lock<std::mutex>& lock);
  void replay_one(std::unique_lock<std::mutex>& lock);
  void spool_queue_locked();
  // After a transient failure: drops the connection and tries again after a backoff.
  void retry_later(const std::string& error);
  // A window the database refuses for its own sake goes to <spool>/failed.
  void set_aside(const Spool::Entry& entry, const WriteError& error);
  // Counts a stored window, ends the backoff and calls on_written (with the lock released).
  void written_one(std::unique_lock<std::mutex>& lock, const profile::WindowProfile& window);
  // Drops old partitions once per retention_interval; true when it ran (the lock was released).
  bool maybe_apply_retention(std::unique_lock<std::mutex>& lock);

  WriterOptions options_;
  StoreFactory factory_;
  std::unique_ptr<Store> store_;  // only the writer thread touches it

  mutable std::mutex mutex_;
  std::condition_variable wake_;     // new work, stop, flush
  std::condition_variable drained_;  // queue emptied
  std::deque<profile::WindowProfile> queue_;
  bool busy_ = false;  // the writer thread holds a window outside the queue
  Spool spool_;
  WriterStats stats_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_retention_{};
  std::thread thread_;
};

}  // namespace perfwatch::storage
