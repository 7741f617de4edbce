// Persistent worker threads for the CPU backend's passes.
//
// run(n, task) calls task(0), ..., task(n - 1) once each, task(0) on the
// calling thread and the others on workers started by the constructor, and
// returns when all have finished. Nothing is allocated per run: the task is
// passed as a pointer, workers sleep on a condition variable between runs.
// An exception thrown by a task is rethrown by run (the first one, after all
// tasks have finished).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace zoopt::detail {

class PassThreads {
 public:
  /// Starts `workers` threads (a run then has at most workers + 1 tasks).
  explicit PassThreads(unsigned workers) {
    threads_.reserve(workers);
    for (unsigned id = 1; id <= workers; ++id) threads_.emplace_back([this, id] { loop(id); });
  }
  PassThreads(const PassThreads&) = delete;
  PassThreads& operator=(const PassThreads&) = delete;
  ~PassThreads() {
    {
      const std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  /// Most tasks one run can take.
  [[nodiscard]] unsigned capacity() const noexcept {
    return static_cast<unsigned>(threads_.size()) + 1;
  }

  /// Runs task(0..n-1); n must not exceed capacity().
  template <class Task>
  void run(unsigned n, Task& task) {
    if (n <= 1) {
      task(0u);
      return;
    }
    {
      const std::lock_guard lock(mutex_);
      call_ = [](void* t, unsigned id) { (*static_cast<Task*>(t))(id); };
      task_ = &task;
      tasks_ = n;
      pending_ = n - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    std::exception_ptr own;
    try {
      task(0u);
    } catch (...) {
      own = std::current_exception();
    }
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    if (own) std::rethrow_exception(own);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void loop(unsigned id) {
    std::uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (id >= tasks_) continue;
      lock.unlock();
      std::exception_ptr failed;
      try {
        call_(task_, id);
      } catch (...) {
        failed = std::current_exception();
      }
      lock.lock();
      if (failed && !error_) error_ = failed;
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  void (*call_)(void*, unsigned) = nullptr;
  void* task_ = nullptr;
  unsigned tasks_ = 0;
  unsigned pending_ = 0;
  std::uint64_t generation_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace zoopt::detail

namespace zoopt::detail {

/// Holds a backend's PassThreads, started on first use. A copy of the
/// holder is empty (a copied backend starts its own workers), so two copies
/// never share workers.
class PassThreadsSlot {
 public:
  PassThreadsSlot() = default;
  PassThreadsSlot(const PassThreadsSlot&) noexcept {}
  PassThreadsSlot& operator=(const PassThreadsSlot&) noexcept { return *this; }
  PassThreadsSlot(PassThreadsSlot&&) noexcept = default;
  PassThreadsSlot& operator=(PassThreadsSlot&&) noexcept = default;
  ~PassThreadsSlot() = default;

  /// The workers for runs of up to `tasks` tasks.
  PassThreads& get(unsigned tasks) {
    if (!threads_ || threads_->capacity() < tasks)
      threads_ = std::make_unique<PassThreads>(tasks - 1);
    return *threads_;
  }

 private:
  std::unique_ptr<PassThreads> threads_;
};

}  // namespace zoopt::detail
