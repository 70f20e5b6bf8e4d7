#pragma once
// The thread the engine and the dispatcher each run: it works, then sleeps until woken, stopped or
// its interval passes. Derived classes start it in their constructor and call stop() first thing in
// their destructor, so the thread never sees a half-destroyed object.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace perfwatch::alerts {

class Background {
 public:
  Background() = default;
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  // Cuts the current sleep short.
  void wake() {
    {
      std::lock_guard lock(mutex_);
      woken_ = true;
    }
    wake_.notify_all();
  }

 protected:
  ~Background() = default;

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // With mutex_ held: sleeps up to `for_at_most`, or until woken (when `wakeable`) or stopped.
  void sleep(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds for_at_most, bool wakeable = true) {
    wake_.wait_for(lock, for_at_most, [&] { return stopping_ || (wakeable && woken_); });
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace perfwatch::alerts
