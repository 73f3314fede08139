// hwbench load generator: schedules and issues queries, timestamps completions, and analyses the
// measured window. It knows nothing of models, tensors or backends: only sample ids (a sequence
// number per issued sample) and sample indices (a position in the workload's sample set) cross its
// boundary.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "analysis.h"
#include "sample_log.h"

namespace hwbench {

/// \brief What the load generator drives. Implemented by the Python SUT adapter.
class SystemUnderTest {
 public:
  virtual ~SystemUnderTest() = default;
  /// \brief Called on the load generator's issue thread with `n` new samples.
  /// May block: while it blocks no other query is issued, and in Server the delay counts as
  /// latency because latency runs from each query's scheduled arrival. The arrays are only valid
  /// during the call. Must not throw: report faults through LoadGen::abort.
  virtual void issue(const uint64_t* ids, const uint64_t* indices, size_t n) = 0;
  /// \brief Called on the issue thread after the last query of a phase, so a batching SUT can
  /// run what it holds back. May block.
  virtual void flush() = 0;
};

/// \brief Loads the samples that queries will name into memory, before the timed phases.
class SampleLibrary {
 public:
  virtual ~SampleLibrary() = default;
  /// \brief Called on the thread that called LoadGen::run, outside any timed phase. May block.
  virtual void load(const std::vector<uint64_t>& indices) = 0;
  /// \brief Called on the thread that called LoadGen::run, outside any timed phase. May block.
  virtual void unload(const std::vector<uint64_t>& indices) = 0;
};

/// \brief Progress of a run, readable from any thread while it runs.
struct Progress {
  std::string phase;  // "idle", "loading", "warmup", "measure", "drain", "done"
  double elapsed_s = 0;
  uint64_t issued = 0;
  uint64_t completed = 0;
};

/// \brief What a run leaves behind: the analysis plus the raw per-sample record.
struct RunOutput {
  Summary summary;
  Records records;         // measured window only
  std::vector<std::string> errors;  // faults that invalidate the run (abort, timeout, bad ids)
  uint64_t stale_completions = 0;  // completions of an earlier run's ids, counted and ignored
  int64_t spin_ns = 0;             // the issue thread's busy-waiting in the measured window
  bool interrupted = false;
  // The issue thread was still inside a call into the system under test (or the sample library)
  // when the run ended: it was detached, not joined, and the LoadGen is retired (see run()).
  bool abandoned = false;
  int64_t start_ns = 0;    // steady-clock time at which the measured window began
  uint64_t first_seq = 0;  // sequence number (id without its run tag) of records' first row
};

/// \brief One load generator; one run at a time.
///
/// run() is called from one thread and blocks until the run ends. complete() is thread-safe and
/// may be called from any thread, including from inside SystemUnderTest::issue. abort() and
/// progress() are thread-safe.
class LoadGen {
 public:
  LoadGen();
  ~LoadGen();

  /// \brief Runs warm-up then the measured window, and returns the analysis.
  /// `poll` is called about every 20 ms on the calling thread; a non-empty return aborts the run
  /// with that reason, and marks it interrupted. `issue_thread_scope`, if set, is called once at
  /// the start of the issue thread; what it returns lives until that thread ends (bindings use it
  /// to keep one interpreter thread state for every callback).
  ///
  /// A watchdog on the calling thread aborts the run when samples are outstanding and none has
  /// completed for `sample_timeout_s`, even while the issue thread is blocked in the SUT. After
  /// any abort the issue thread gets kAbandonGrace to come back; if it does not, it is detached
  /// and the output says `abandoned`. The detached thread still uses this LoadGen, `sut` and
  /// `qsl` whenever its call returns: the caller must keep all three alive for the rest of the
  /// process (a deliberate leak), and this LoadGen is retired: a later run() throws.
  RunOutput run(SystemUnderTest& sut, SampleLibrary& qsl, const Settings& settings,
                const std::function<std::string()>& poll,
                const std::function<std::shared_ptr<void>()>& issue_thread_scope = {});

  /// \brief Marks samples complete, taking one timestamp for the call. Thread-safe. Ignored
  /// when no run is open (a completion that comes after run() returned). An id carries its run's
  /// tag (see kRunTagShift): an id of an earlier run, completed late during this one, is counted
  /// as stale and ignored; it never completes this run's sample of the same sequence number.
  void complete(const uint64_t* ids, size_t n);

  /// \brief Token events of samples that complete in pieces (a generative workload): one
  /// timestamp for the call, as complete() takes. `counts[i]` is the tokens generated so far for
  /// `ids[i]` (>= 1, never less than its previous event's); the first event of an id is its first
  /// token. Per id it records the first and latest event's time, the count, and the longest gap
  /// between consecutive events; every gap goes to the inter-token latency. Thread-safe, and may
  /// be called from any thread, but the events of one id must come from one thread at a time (a
  /// serving loop's). Ignored when no run is open; ids of an earlier run are ignored, and bad
  /// ids or counts make the run invalid. complete() still ends each sample after its last event.
  /// `first` (optional, n values): the value of each id's first token; it is recorded from the
  /// id's first event (the sample log's first_token_value) and ignored on later ones.
  void tokens(const uint64_t* ids, const uint32_t* counts, size_t n,
              const int64_t* first = nullptr);

  /// \brief Sample ids are (run tag << kRunTagShift) | sequence number within the run. Run tags
  /// come from one process-wide counter, so no two runs of any LoadGen share an id.
  static constexpr unsigned kRunTagShift = 32;

  /// \brief How long an aborted run waits for its issue thread before abandoning it.
  static constexpr int kAbandonGraceMs = 500;

  /// \brief True once a run of this LoadGen abandoned its issue thread. Thread-safe.
  bool retired() const { return retired_.load(std::memory_order_acquire); }

  /// \brief Stops the run as soon as possible and marks it invalid with `reason`. Thread-safe.
  void abort(const std::string& reason);

  /// \brief True once the run has been aborted; a SUT may stop early. Thread-safe.
  bool is_aborted() const { return aborted(); }

  /// \brief Thread-safe snapshot of the run's progress.
  Progress progress() const;

  /// \brief The load generator's clock (steady, nanoseconds), for aligning other timelines.
  static int64_t now_ns();

 private:
  struct Phase;
  void run_phase(SystemUnderTest& sut, const Settings& s, Phase& phase);
  void run_sequential(SystemUnderTest& sut, const Settings& s, Phase& phase);
  void run_offline(SystemUnderTest& sut, const Settings& s, Phase& phase);
  void run_server(SystemUnderTest& sut, const Settings& s, Phase& phase);
  void run_accuracy(SystemUnderTest& sut, SampleLibrary& qsl, const Settings& s);
  uint64_t issue_samples(SystemUnderTest& sut, const uint64_t* indices, size_t n, int64_t stamp,
                         uint64_t query);
  bool wait_completed(uint64_t target, double timeout_s, int64_t spin_ns = 0,
                      bool count_spin = false);
  void flush_sut(SystemUnderTest& sut);
  void load_samples(SampleLibrary& qsl);
  void unload_samples(SampleLibrary& qsl);
  void watchdog(double timeout_s);
  void note_issue(uint64_t first, int64_t t);
  std::string timeout_reason(uint64_t outstanding, double timeout_s) const;
  void add_error(const std::string& e);
  void close_completions();
  bool aborted() const { return abort_.load(std::memory_order_acquire); }

  SampleLog log_;
  std::atomic<uint64_t> issued_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> bad_completions_{0};
  std::atomic<uint64_t> stale_completions_{0};
  std::atomic<uint64_t> bad_token_events_{0};
  std::atomic<int64_t> spin_ns_{0};  // busy-waiting in the measured window (Settings::spin_us)
  std::atomic<uint64_t> run_tag_{0};  // this run's tag, already shifted into the high bits
  std::atomic<bool> abort_{false};
  std::atomic<bool> running_{false};
  // Completions are accepted only while a run is open; `completing_` counts complete() calls in
  // flight so that a run can wait for them before it frees the sample log. Without this gate a
  // completion that comes after run() returned (a worker finishing late) would write freed memory.
  std::atomic<bool> accepting_{false};
  std::atomic<int> completing_{0};
  std::atomic<int> waiters_{0};
  std::atomic<int64_t> phase_start_ns_{0};
  // When the run last made progress: the latest completion, or the issue that made samples
  // outstanding when none were. Read by the watchdog; one relaxed store per complete() call.
  std::atomic<int64_t> last_progress_ns_{0};
  std::atomic<bool> retired_{false};
  std::atomic<const char*> in_call_{nullptr};  // the issue thread's current call into Python
  std::atomic<int> phase_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> errors_;
  std::vector<uint64_t> loaded_;  // the performance sample set (indices)
  uint64_t measure_first_id_ = 0;
  uint64_t measure_end_id_ = 0;
  int64_t measure_start_ns_ = 0;
};

}  // namespace hwbench
