#include "pacer.h"

#include <algorithm>
#include <chrono>
#include <functional>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

namespace hwbench {

TokenPacer::TokenPacer(LoadGen* lg, int64_t prefill_ns, int64_t token_ns, int64_t spin_ns,
                       int64_t first_value)
    : lg_(lg), prefill_ns_(prefill_ns), token_ns_(token_ns), spin_ns_(spin_ns),
      first_value_(first_value) {
  thread_ = std::thread([this] { loop(); });
}

TokenPacer::~TokenPacer() { stop(); }

void TokenPacer::submit(const uint64_t* ids, const uint32_t* lengths, size_t n,
                        const int64_t* prefill_ns) {
  const int64_t t = LoadGen::now_ns();
  std::lock_guard<std::mutex> lk(mu_);
  if (stop_) return;
  for (size_t i = 0; i < n; ++i) {
    const int64_t prefill = prefill_ns ? prefill_ns[i] : prefill_ns_;
    heap_.push_back(Item{t + prefill, ids[i], 1, std::max<uint32_t>(1, lengths[i])});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<Item>());
  }
  outstanding_ += n;
  wake_.notify_one();
}

void TokenPacer::drain() {
  std::unique_lock<std::mutex> lk(mu_);
  // An aborted run (Ctrl-C, a timeout) stops waiting: its issue thread must come back.
  while (outstanding_ != 0 && !stop_ && !lg_->is_aborted()) {
    idle_.wait_for(lk, std::chrono::milliseconds(10));
  }
}

size_t TokenPacer::outstanding() {
  std::lock_guard<std::mutex> lk(mu_);
  return outstanding_;
}

void TokenPacer::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    heap_.clear();
    wake_.notify_all();
    idle_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void TokenPacer::loop() {
#if defined(__linux__)
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);  // wake within microseconds of a step
#endif
  std::vector<uint64_t> ids, done;
  std::vector<uint32_t> counts;
  std::vector<int64_t> first;  // the first token's value, for every id of a step
  std::vector<Item> stepped;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    if (heap_.empty()) {
      wake_.wait(lk);
      continue;
    }
    const int64_t due = heap_.front().due;
    int64_t now = LoadGen::now_ns();
    if (due - now > spin_ns_) {
      // Woken early by a submission, this re-reads the heap: a new request may be due first.
      wake_.wait_for(lk, std::chrono::nanoseconds(due - now - spin_ns_));
      continue;
    }
    if (due > now) {
      lk.unlock();
      while (LoadGen::now_ns() < due) {
      }
      lk.lock();
      continue;  // re-read: a stop or an earlier request may have come meanwhile
    }
    ids.clear();
    counts.clear();
    done.clear();
    stepped.clear();
    while (!heap_.empty() && heap_.front().due <= now) {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<Item>());
      Item it = heap_.back();
      heap_.pop_back();
      ids.push_back(it.id);
      counts.push_back(it.next);
      if (it.next >= it.total) {
        done.push_back(it.id);
      } else {
        // Paced from when this token was due, not from when it was reported: no drift.
        stepped.push_back(Item{it.due + token_ns_, it.id, it.next + 1, it.total});
      }
    }
    lk.unlock();
    first.assign(ids.size(), first_value_);
    lg_->tokens(ids.data(), counts.data(), ids.size(), first.data());
    if (!done.empty()) lg_->complete(done.data(), done.size());
    lk.lock();
    if (stop_) break;
    for (const Item& it : stepped) {
      heap_.push_back(it);
      std::push_heap(heap_.begin(), heap_.end(), std::greater<Item>());
    }
    outstanding_ -= std::min(outstanding_, done.size());
    if (outstanding_ == 0) idle_.notify_all();
  }
}

}  // namespace hwbench
