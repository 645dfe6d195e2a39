#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <string>
#include <system_error>

#include "lcllm/error.h"

namespace lcllm {

ThreadPool::ThreadPool(int32_t n_threads) {
  if (n_threads <= 0) n_threads = std::max(1, int32_t(std::thread::hardware_concurrency()));
  try {
    for (int32_t i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  } catch (const std::system_error& e) {
    // The threads that did start must be stopped and joined here: a joinable std::thread destroyed by the failed
    // constructor would terminate the process (E12 item 5).
    const size_t started = workers_.size();
    stop_and_join();
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "cannot start " + std::to_string(n_threads) + " CPU threads (the system gave " +
                    std::to_string(started + 1) + ": " + e.what() + "); lower --threads");
  }
}

ThreadPool::~ThreadPool() { stop_and_join(); }

void ThreadPool::stop_and_join() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

namespace {
void run_chunk(const std::function<void(int64_t, int64_t, int32_t)>& fn, int64_t n, int32_t index, int32_t total) {
  const int64_t begin = n * index / total;
  const int64_t end = n * (index + 1) / total;
  if (begin < end) fn(begin, end, index);
}
}  // namespace

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int32_t)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_n_ = n;
    pending_ = int32_t(workers_.size());
    ++generation_;
  }
  work_cv_.notify_all();
  run_chunk(fn, n, 0, size());
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::worker_loop(int32_t index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t, int32_t)>* job;
    int64_t n;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
    }
    run_chunk(*job, n, index, size());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }
}

}  // namespace lcllm
