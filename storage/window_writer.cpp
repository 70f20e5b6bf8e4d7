#include "storage/window_writer.h"

#include <random>
#include <stdexcept>

#include "common/log.h"

namespace perfwatch::storage {
namespace {

using std::chrono::steady_clock;

Spool open_spool(const WriterOptions& options) {
  Result<Spool> spool = Spool::open(options.spool_dir, options.spool_max_bytes);
  if (!spool) throw std::runtime_error(spool.error().message);
  return std::move(*spool);
}

// Full jitter on top of the exponential step, so hosts that lost the same database do not all
// reconnect in the same instant.
std::chrono::milliseconds jittered(std::chrono::milliseconds backoff) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> extra(0, backoff.count() / 2);
  return backoff + std::chrono::milliseconds(extra(rng));
}

}  // namespace

WindowWriter::WindowWriter(WriterOptions options, StoreFactory factory)
    : options_(std::move(options)), factory_(std::move(factory)), spool_(open_spool(options_)) {
  thread_ = std::thread([this] { run(); });
}

WindowWriter::~WindowWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    spool_queue_locked();  // nothing queued is lost, even without a flush()
  }
  wake_.notify_all();
  thread_.join();
}

void WindowWriter::enqueue(profile::WindowProfile window) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(window));
  }
  wake_.notify_all();
}

void WindowWriter::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  wake_.notify_all();
  if (!drained_.wait_for(lock, timeout, [&] { return queue_.empty() && !busy_; })) {
    log::warn("database writes did not finish in time; spooling the rest", {{"windows", queue_.size()}});
    spool_queue_locked();
  }
}

WriterStats WindowWriter::stats() const {
  std::lock_guard lock(mutex_);
  WriterStats s = stats_;
  s.queue_depth = queue_.size() + (busy_ ? 1 : 0);
  s.spool_windows = spool_.size();
  s.spool_bytes = spool_.bytes();
  s.quarantine_windows = spool_.quarantine_size();
  s.quarantine_bytes = spool_.quarantine_bytes();
  s.dropped += spool_.dropped();
  s.connected = store_ != nullptr;
  if (!queue_.empty()) s.oldest_unwritten_start = queue_.front().start;
  if (auto spooled = spool_.oldest(); spooled && (!s.oldest_unwritten_start || spooled->start < *s.oldest_unwritten_start))
    s.oldest_unwritten_start = spooled->start;
  return s;
}

void WindowWriter::spool_queue_locked() {
  for (profile::WindowProfile& w : queue_) {
    if (Result<Spool::Entry> r = spool_.push(w); !r) {
      // The disk failed too: this window is lost, and says so.
      log::error("cannot spool window; it is lost", {{"error", r.error().message}});
      ++stats_.dropped;
      continue;
    }
    ++stats_.spooled;
  }
  queue_.clear();
}

void WindowWriter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (stopping_ && queue_.empty()) break;
    if (!ensure_store(lock)) {
      spool_queue_locked();
      drained_.notify_all();
      if (stopping_) break;
      wake_.wait_until(lock, next_connect_);
      continue;
    }
    if (!queue_.empty()) {
      write_queued(lock);
    } else if (spool_.size() > 0 && !stopping_) {
      replay_one(lock);
    } else {
      drained_.notify_all();
      if (stopping_) break;
      if (maybe_apply_retention(lock)) continue;
      wake_.wait_until(lock, next_retention_, [&] { return stopping_ || !queue_.empty(); });
    }
  }
}

bool WindowWriter::ensure_store(std::unique_lock<std::mutex>& lock) {
  if (store_) return true;
  if (steady_clock::now() < next_connect_) return false;
  lock.unlock();
  Result<std::unique_ptr<Store>> store = factory_();
  lock.lock();
  if (store) {
    store_ = std::move(*store);
    return true;
  }
  retry_later(store.error().message);
  return false;
}

void WindowWriter::retry_later(const std::string& error) {
  // Log the first failure of an outage as a warning, the retries at debug level.
  if (backoff_.count() == 0)
    log::warn("database write failed; spooling windows until it succeeds", {{"error", error}});
  else
    log::debug("database still unavailable", {{"error", error}});
  store_.reset();
  backoff_ = std::min(std::max(backoff_ * 2, options_.min_backoff), options_.max_backoff);
  next_connect_ = steady_clock::now() + jittered(backoff_);
}

void WindowWriter::set_aside(const Spool::Entry& entry, const WriteError& error) {
  log::error("the database refuses this window; set aside", {{"path", entry.path}, {"error", error.message}});
  spool_.quarantine(entry);
  ++stats_.quarantined;
  if (error.kind == WriteFailure::implausible_time) ++stats_.implausible_time;
}

void WindowWriter::write_queued(std::unique_lock<std::mutex>& lock) {
  profile::WindowProfile window = std::move(queue_.front());
  queue_.pop_front();
  busy_ = true;
  lock.unlock();
  WriteResult written = store_->write_window(window);
  lock.lock();
  busy_ = false;
  if (written) {
    written_one(lock, window);
    return;
  }
  ++stats_.write_errors;
  if (written.error().kind == WriteFailure::transient) {
    queue_.push_front(std::move(window));  // spooled by the next turn, as the store is gone
    retry_later(written.error().message);
    return;
  }
  Result<Spool::Entry> spooled = spool_.push(window);
  if (!spooled) {
    log::error("cannot spool window; it is lost", {{"error", spooled.error().message}});
    ++stats_.dropped;
    return;
  }
  set_aside(*spooled, written.error());
}

void WindowWriter::replay_one(std::unique_lock<std::mutex>& lock) {
  const Spool::Entry entry = *spool_.oldest();
  Result<profile::WindowProfile> window = spool_.load(entry);
  if (!window) {
    set_aside(entry, {WriteFailure::unwritable, window.error().message});
    return;
  }
  busy_ = true;
  lock.unlock();
  WriteResult written = store_->write_window(*window);
  lock.lock();
  busy_ = false;
  if (written) {
    spool_.remove(entry);
    written_one(lock, *window);
    return;
  }
  ++stats_.write_errors;
  if (written.error().kind == WriteFailure::transient)
    retry_later(written.error().message);
  else
    set_aside(entry, written.error());
}

void WindowWriter::written_one(std::unique_lock<std::mutex>& lock, const profile::WindowProfile& window) {
  ++stats_.written;
  stats_.last_written_end = std::max(stats_.last_written_end, window.end);
  // The backoff ends with a write, not a connection: a database may accept connections and still
  // refuse writes (rights, a full disk) for a long time.
  if (backoff_.count() > 0) log::info("database writes succeed again", {{"spooled_windows", spool_.size()}});
  backoff_ = std::chrono::milliseconds(0);
  if (!options_.on_written) return;
  lock.unlock();
  options_.on_written(window);
  lock.lock();
}

bool WindowWriter::maybe_apply_retention(std::unique_lock<std::mutex>& lock) {
  const auto now = steady_clock::now();
  if (now < next_retention_) return false;
  next_retention_ = now + options_.retention_interval;
  lock.unlock();
  Result<int> dropped = store_->apply_retention(options_.retention, profile::Clock::now());
  lock.lock();
  if (!dropped)
    log::warn("retention failed", {{"error", dropped.error().message}});
  else if (*dropped > 0)
    log::info("dropped partitions past retention", {{"partitions", *dropped}});
  return true;
}

}  // namespace perfwatch::storage
