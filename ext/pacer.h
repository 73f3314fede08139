// A compiled serving loop that computes nothing and reports tokens on a fixed pace: the null
// backend's streaming mode, so that the load generator's token timing can be checked exactly.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "loadgen.h"

namespace hwbench {

/// \brief Each submitted request's first token comes `prefill_ns` after its submission and each
/// next one `token_ns` after the previous, independently per request (no queueing between
/// requests). Token k is due at submission + prefill_ns + (k - 1) token_ns: a step woken late
/// does not push the later ones back, so TPOT averages to token_ns exactly. its own thread calls LoadGen::tokens once per step for every request due, then
/// LoadGen::complete for those that reached their length. Sleeps until `spin_ns` before a step,
/// then busy-waits, so steps are on time to within microseconds. No Python, no GIL.
class TokenPacer {
 public:
  /// \brief Starts the thread. `lg` must outlive the pacer.
  /// Every first token event reports `first_value` as the token's value.
  TokenPacer(LoadGen* lg, int64_t prefill_ns, int64_t token_ns, int64_t spin_ns,
             int64_t first_value = 0);
  /// \brief Stops the thread (stop()).
  ~TokenPacer();
  /// \brief Queues requests of `lengths[i]` (>= 1) tokens, due from now: the first token after
  /// `prefill_ns[i]` when given (a per-request prefill), else the pacer's. Thread-safe.
  void submit(const uint64_t* ids, const uint32_t* lengths, size_t n,
              const int64_t* prefill_ns = nullptr);
  /// \brief Blocks until every request submitted so far has completed, stop(), or the run's
  /// abort. Thread-safe.
  void drain();
  /// \brief Drops what is queued and ends the thread. Idempotent; thread-safe.
  void stop();
  /// \brief Requests submitted and not yet complete. Thread-safe.
  size_t outstanding();

 private:
  struct Item {
    int64_t due;
    uint64_t id;
    uint32_t next;   // the count the next event reports
    uint32_t total;  // the request's length
    bool operator>(const Item& o) const { return due > o.due; }
  };
  void loop();

  LoadGen* lg_;
  const int64_t prefill_ns_, token_ns_, spin_ns_, first_value_;
  std::mutex mu_;
  std::condition_variable wake_, idle_;
  std::vector<Item> heap_;  // a min-heap on `due`
  size_t outstanding_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace hwbench
