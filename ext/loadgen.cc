#include "loadgen.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define HWBENCH_PAUSE() _mm_pause()
#else
#define HWBENCH_PAUSE() std::this_thread::yield()
#endif

namespace hwbench {

namespace {
const char* const kPhaseNames[] = {"idle", "loading", "warmup", "measure", "drain", "done"};
enum PhaseId { kIdle, kLoading, kWarmup, kMeasure, kDrain, kDone };
constexpr int64_t kNsPerS = 1000000000;
constexpr int64_t kMaxSleepNs = 1000000;  // a sleeping issue thread still sees an abort within 1 ms
constexpr uint64_t kSeqMask = (uint64_t{1} << LoadGen::kRunTagShift) - 1;
std::atomic<uint64_t> g_last_run_tag{0};  // process-wide: ids of two runs never collide
static_assert(SampleLog::kMaxBlocks * SampleLog::kBlockSize <= kSeqMask + 1,
              "a run's sequence numbers must fit below its tag");
int64_t seconds_to_ns(double s) { return static_cast<int64_t>(s * 1e9); }
}  // namespace

/// One stretch of issuing (warm-up or the measured window) and when it may stop.
struct LoadGen::Phase {
  double min_s = 0, max_s = 0;
  uint64_t min_queries = 0, max_queries = 0;
  uint64_t samples_per_query = 1;
  uint64_t seed = 0;
  bool warmup = false;
};

int64_t LoadGen::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

LoadGen::LoadGen() = default;
LoadGen::~LoadGen() = default;

void LoadGen::add_error(const std::string& e) {
  std::lock_guard<std::mutex> lk(mu_);
  errors_.push_back(e);
}

void LoadGen::abort(const std::string& reason) {
  if (!running_.load()) return;
  add_error(reason);
  abort_.store(true, std::memory_order_release);
  std::lock_guard<std::mutex> lk(mu_);
  cv_.notify_all();
}

Progress LoadGen::progress() const {
  Progress p;
  int ph = phase_.load(std::memory_order_relaxed);
  p.phase = kPhaseNames[ph];
  int64_t start = phase_start_ns_.load(std::memory_order_relaxed);
  p.elapsed_s = start ? static_cast<double>(now_ns() - start) / 1e9 : 0.0;
  p.issued = issued_.load(std::memory_order_relaxed);
  p.completed = completed_.load(std::memory_order_relaxed);
  return p;
}

void LoadGen::complete(const uint64_t* ids, size_t n) {
  const int64_t t = now_ns();
  // seq_cst on both sides (here and in close_completions): either this call sees the run closed,
  // or the closing thread sees this call in flight and waits for it.
  completing_.fetch_add(1, std::memory_order_seq_cst);
  if (!accepting_.load(std::memory_order_seq_cst)) {
    completing_.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  const uint64_t issued = issued_.load(std::memory_order_acquire);
  const uint64_t tag = run_tag_.load(std::memory_order_relaxed);
  uint64_t good = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t id_tag = ids[i] & ~kSeqMask;
    const uint64_t id = ids[i] & kSeqMask;
    if (id_tag != tag) {
      // An earlier run's tag: a late completion of a sample that run gave up on. Anything else
      // (no tag, a tag not yet handed out) was never issued by any run.
      bool stale = id_tag != 0 && id_tag < tag;
      (stale ? stale_completions_ : bad_completions_).fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (id >= issued) {
      bad_completions_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    int64_t old = log_.block(id).complete_ns[SampleLog::slot(id)].exchange(
        t, std::memory_order_relaxed);
    if (old != 0) {
      bad_completions_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    ++good;
  }
  // Stored before the count, so that the watchdog never sees a new count with an old time.
  if (good) last_progress_ns_.store(t, std::memory_order_relaxed);
  completed_.fetch_add(good, std::memory_order_acq_rel);
  if (waiters_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  }
  completing_.fetch_sub(1, std::memory_order_seq_cst);
}

void LoadGen::tokens(const uint64_t* ids, const uint32_t* counts, size_t n,
                     const int64_t* first) {
  const int64_t t = now_ns();
  completing_.fetch_add(1, std::memory_order_seq_cst);  // the same gate as complete()
  if (!accepting_.load(std::memory_order_seq_cst)) {
    completing_.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  const uint64_t issued = issued_.load(std::memory_order_acquire);
  const uint64_t tag = run_tag_.load(std::memory_order_relaxed);
  std::vector<std::pair<uint64_t, int64_t>> gaps;
  gaps.reserve(n);
  uint64_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t id = ids[i] & kSeqMask;
    if ((ids[i] & ~kSeqMask) != tag) continue;  // an earlier run's: its run is over
    if (id >= issued || counts[i] == 0) {
      ++bad;
      continue;
    }
    TokenBlock& tb = log_.tokens(id);
    const size_t s = SampleLog::slot(id);
    const uint32_t before = tb.count[s].load(std::memory_order_relaxed);
    if (counts[i] < before) {
      ++bad;
      continue;
    }
    tb.count[s].store(counts[i], std::memory_order_relaxed);
    const int64_t last = tb.last_ns[s].load(std::memory_order_relaxed);
    tb.last_ns[s].store(t, std::memory_order_relaxed);
    if (last == 0) {
      tb.first_ns[s].store(t, std::memory_order_relaxed);
      if (first) tb.first_value[s].store(first[i], std::memory_order_relaxed);
      continue;
    }
    const int64_t gap = t - last;
    if (gap > tb.max_gap_ns[s].load(std::memory_order_relaxed)) {
      tb.max_gap_ns[s].store(gap, std::memory_order_relaxed);
    }
    gaps.emplace_back(id, gap);
  }
  if (!gaps.empty()) log_.add_gaps(gaps);
  if (bad) bad_token_events_.fetch_add(bad, std::memory_order_relaxed);
  // A token is progress: a long response that streams is not a stuck sample.
  if (bad < n) last_progress_ns_.store(t, std::memory_order_relaxed);
  completing_.fetch_sub(1, std::memory_order_seq_cst);
}

// Stops accepting completions and waits for the complete() calls already in flight, so that the
// sample log can be read and freed safely.
void LoadGen::close_completions() {
  accepting_.store(false, std::memory_order_seq_cst);
  while (completing_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

// An issue that makes samples outstanding when none were starts the watchdog's clock; while
// samples are outstanding, only completions move it. Called before `issued_` is published.
void LoadGen::note_issue(uint64_t first, int64_t t) {
  if (completed_.load(std::memory_order_relaxed) >= first) {
    last_progress_ns_.store(t, std::memory_order_relaxed);
  }
}

std::string LoadGen::timeout_reason(uint64_t outstanding, double timeout_s) const {
  return std::to_string(outstanding) + " sample(s) not completed within the sample timeout of " +
         std::to_string(timeout_s) + " s";
}

// The calling thread's check, every 20 ms: samples outstanding and no completion for the sample
// timeout abort the run, even while the issue thread is blocked inside the SUT (wait_completed
// only judges while the issue thread waits). Progress is judged per completion, never per
// issue() call: an Offline issue() legitimately lasts minutes while its batches complete.
void LoadGen::watchdog(double timeout_s) {
  const uint64_t issued = issued_.load(std::memory_order_acquire);
  const uint64_t done = completed_.load(std::memory_order_acquire);
  if (done >= issued || aborted()) return;
  if (now_ns() - last_progress_ns_.load(std::memory_order_relaxed) <= seconds_to_ns(timeout_s)) {
    return;
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (aborted()) return;  // wait_completed timed out first: one reason, not two
  errors_.push_back(timeout_reason(issued - done, timeout_s));
  abort_.store(true, std::memory_order_release);
  cv_.notify_all();
}

// Records `n` samples as one or more queries of `per_query` samples, then hands them to the SUT.
// `stamps` holds one issue time per query, or is null for "now".
uint64_t LoadGen::issue_samples(SystemUnderTest& sut, const uint64_t* indices, size_t n,
                                int64_t stamp, uint64_t query) {
  const uint64_t first = issued_.load(std::memory_order_relaxed);
  if (!log_.reserve(first + n)) {
    abort("the run exceeded the sample log's capacity; shorten it");
    return first;
  }
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t id = first + i;
    SampleLog::Block& b = log_.block(id);
    size_t s = SampleLog::slot(id);
    b.index[s] = indices[i];
    b.query[s] = query;
    b.issue_ns[s] = stamp;
    ids[i] = run_tag_.load(std::memory_order_relaxed) | id;
  }
  note_issue(first, stamp);
  issued_.store(first + n, std::memory_order_release);
  in_call_.store("issue", std::memory_order_relaxed);
  sut.issue(ids.data(), indices, n);
  in_call_.store(nullptr, std::memory_order_relaxed);
  return first + n;
}

// The calls into the SUT and the sample library other than issue(), each marked so that an
// abandoned run can name the call its issue thread was stuck in.
void LoadGen::flush_sut(SystemUnderTest& sut) {
  in_call_.store("flush", std::memory_order_relaxed);
  sut.flush();
  in_call_.store(nullptr, std::memory_order_relaxed);
}

void LoadGen::load_samples(SampleLibrary& qsl) {
  in_call_.store("load", std::memory_order_relaxed);
  qsl.load(loaded_);
  in_call_.store(nullptr, std::memory_order_relaxed);
}

// An abandoned issue thread that comes back skips unload(): its run is over and written, and
// its sample library may already serve nothing.
void LoadGen::unload_samples(SampleLibrary& qsl) {
  if (retired()) return;
  in_call_.store("unload", std::memory_order_relaxed);
  qsl.unload(loaded_);
  in_call_.store(nullptr, std::memory_order_relaxed);
}

bool LoadGen::wait_completed(uint64_t target, double timeout_s, int64_t spin_ns,
                             bool count_spin) {
  if (completed_.load(std::memory_order_acquire) >= target) return true;  // inline SUTs
  // A short spin first: a fast SUT completes within microseconds, sooner than a wake-up.
  if (spin_ns > 0) {
    const int64_t spin_start = now_ns();
    int64_t t = spin_start;
    bool done = false;
    while (!done && t - spin_start < spin_ns) {
      HWBENCH_PAUSE();
      done = completed_.load(std::memory_order_acquire) >= target;
      t = now_ns();
    }
    if (count_spin) spin_ns_.fetch_add(t - spin_start, std::memory_order_relaxed);
    if (done) return true;
  }
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  std::unique_lock<std::mutex> lk(mu_);
  uint64_t last = completed_.load();
  int64_t last_progress = now_ns();
  bool ok = false;
  while (true) {
    uint64_t c = completed_.load(std::memory_order_acquire);
    if (c >= target) {
      ok = true;
      break;
    }
    if (aborted()) break;
    int64_t t = now_ns();
    if (c != last) {
      last = c;
      last_progress = t;
    } else if (t - std::max(last_progress, last_progress_ns_.load(std::memory_order_relaxed)) >
               seconds_to_ns(timeout_s)) {  // token events are progress too
      errors_.push_back(timeout_reason(target - c, timeout_s));
      abort_.store(true, std::memory_order_release);
      break;
    }
    cv_.wait_for(lk, std::chrono::milliseconds(10));
  }
  waiters_.fetch_sub(1, std::memory_order_seq_cst);
  return ok;
}

// SingleStream, MultiStream and every warm-up: the next query is issued when the last completes.
// The minimum duration is met once a query has been issued at or after it (MLPerf LoadGen's
// results.cc judges these scenarios by the final query's issue time).
void LoadGen::run_sequential(SystemUnderTest& sut, const Settings& s, Phase& ph) {
  Rng rng(ph.seed);
  std::vector<uint64_t> idx(ph.samples_per_query);
  const int64_t spin_ns = seconds_to_ns(s.spin_us * 1e-6);
  const int64_t start = now_ns();
  phase_start_ns_.store(start);
  if (!ph.warmup) measure_start_ns_ = start;
  int64_t last_issue = start;
  int64_t spin = spin_ns;
  for (uint64_t q = 0; !aborted(); ++q) {
    const int64_t t = now_ns();
    const double elapsed = static_cast<double>(t - start) / 1e9;
    if (q >= ph.min_queries && static_cast<double>(last_issue - start) / 1e9 >= ph.min_s) break;
    if ((ph.max_queries && q >= ph.max_queries) || (ph.max_s > 0 && elapsed >= ph.max_s)) break;
    // Spin for this query's completion only if the last one came within the spin: a SUT that
    // takes milliseconds would only lose a core to it.
    if (q > 0) spin = t - last_issue <= spin_ns ? spin_ns : 0;
    for (auto& i : idx) i = loaded_[rng.below(loaded_.size())];
    last_issue = t;
    uint64_t target = issue_samples(sut, idx.data(), idx.size(), t, q);
    if (!wait_completed(target, s.sample_timeout_s, spin, !ph.warmup)) break;
  }
}

// Offline: every sample in one query, issued at once; the SUT batches as it likes.
void LoadGen::run_offline(SystemUnderTest& sut, const Settings& s, Phase& ph) {
  uint64_t n = std::max<uint64_t>(
      s.min_query_count,
      static_cast<uint64_t>(std::ceil(s.offline_expected_qps * s.min_duration_s * 1.1)));
  if (s.max_query_count) n = std::min(n, s.max_query_count);
  Rng rng(ph.seed);
  std::vector<uint64_t> idx = choose_samples(loaded_, n, &rng);
  const int64_t start = now_ns();
  phase_start_ns_.store(start);
  measure_start_ns_ = start;
  issue_samples(sut, idx.data(), idx.size(), start, 0);
  if (!aborted()) flush_sut(sut);
}

// Server: Poisson arrivals on the load generator's clock. Queries that fall due while the SUT
// is busy are issued together as soon as it returns; each keeps its scheduled arrival as its
// issue time, so queueing counts as latency.
void LoadGen::run_server(SystemUnderTest& sut, const Settings& s, Phase& ph) {
  std::vector<int64_t> offsets = arrival_schedule(s);
  if (s.max_query_count && offsets.size() > s.max_query_count) offsets.resize(s.max_query_count);
  const size_t n = offsets.size();
  Rng rng(ph.seed);
  const std::vector<uint64_t> idx = choose_samples(loaded_, n, &rng);
  const int64_t start = now_ns() + 100000;  // 100 us lead, so the first arrival is not late
  const int64_t max_ns = ph.max_s > 0 ? seconds_to_ns(ph.max_s) : INT64_MAX;
  const uint64_t tag = run_tag_.load(std::memory_order_relaxed);
  // Sleep until spin_ns before an arrival (capped at 1 ms, so a long gap still checks for an
  // abort), then busy-wait for it: the sleep's wake-up is late by the timer's slack.
  const int64_t spin_ns = seconds_to_ns(s.spin_us * 1e-6);
  phase_start_ns_.store(start);
  measure_start_ns_ = start;
  size_t i = 0;
  int64_t spin_start = -1;  // when the busy-wait for the next arrival began (-1: not spinning)
  while (i < n && !aborted()) {
    int64_t t = now_ns();
    int64_t due = start + offsets[i];
    if (due > t) {
      if (due - t > spin_ns) {
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(std::min(due - t - spin_ns, kMaxSleepNs)));
      } else {
        if (spin_start < 0) spin_start = t;
        HWBENCH_PAUSE();
      }
      continue;
    }
    if (spin_start >= 0) {
      spin_ns_.fetch_add(t - spin_start, std::memory_order_relaxed);
      spin_start = -1;
    }
    if (t - start > max_ns) break;
    size_t j = i;
    while (j < n && start + offsets[j] <= t) ++j;
    const uint64_t first = issued_.load(std::memory_order_relaxed);
    if (!log_.reserve(first + (j - i))) {
      abort("the run exceeded the sample log's capacity; shorten it");
      break;
    }
    std::vector<uint64_t> ids(j - i);
    for (size_t k = i; k < j; ++k) {
      uint64_t id = first + (k - i);
      SampleLog::Block& b = log_.block(id);
      size_t sl = SampleLog::slot(id);
      b.index[sl] = idx[k];
      b.query[sl] = k;
      b.issue_ns[sl] = start + offsets[k];
      ids[k - i] = tag | id;
    }
    note_issue(first, t);
    issued_.store(first + (j - i), std::memory_order_release);
    in_call_.store("issue", std::memory_order_relaxed);
    sut.issue(ids.data(), idx.data() + i, j - i);
    in_call_.store(nullptr, std::memory_order_relaxed);
    i = j;
  }
  if (!aborted()) flush_sut(sut);
}

void LoadGen::run_phase(SystemUnderTest& sut, const Settings& s, Phase& ph) {
  if (ph.warmup || s.scenario == Scenario::SingleStream || s.scenario == Scenario::MultiStream) {
    run_sequential(sut, s, ph);
  } else if (s.scenario == Scenario::Offline) {
    run_offline(sut, s, ph);
  } else {
    run_server(sut, s, ph);
  }
}

// Accuracy: every sample of the set exactly once, loaded in chunks of the performance sample
// count. SingleStream and MultiStream keep their query shape; Offline and Server issue each
// chunk at once, since only the answers are judged.
void LoadGen::run_accuracy(SystemUnderTest& sut, SampleLibrary& qsl, const Settings& s) {
  const uint64_t chunk = std::max<uint64_t>(1, s.performance_sample_count);
  const bool sequential =
      s.scenario == Scenario::SingleStream || s.scenario == Scenario::MultiStream;
  const uint64_t per_query = s.scenario == Scenario::MultiStream ? s.samples_per_query : 1;
  measure_start_ns_ = now_ns();
  phase_start_ns_.store(measure_start_ns_);
  uint64_t query = 0;
  for (uint64_t lo = 0; lo < s.total_sample_count && !aborted(); lo += chunk) {
    uint64_t hi = std::min(s.total_sample_count, lo + chunk);
    loaded_.clear();
    for (uint64_t i = lo; i < hi; ++i) loaded_.push_back(i);
    phase_.store(kLoading);
    load_samples(qsl);
    phase_.store(kMeasure);
    if (sequential) {
      for (uint64_t i = 0; i < loaded_.size() && !aborted(); i += per_query) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(per_query, loaded_.size() - i));
        uint64_t target = issue_samples(sut, loaded_.data() + i, n, now_ns(), query++);
        if (!wait_completed(target, s.sample_timeout_s)) break;  // untimed: no spin
      }
    } else {
      issue_samples(sut, loaded_.data(), loaded_.size(), now_ns(), query++);
      if (!aborted()) flush_sut(sut);
      wait_completed(issued_.load(), s.sample_timeout_s);
    }
    unload_samples(qsl);
  }
}

RunOutput LoadGen::run(SystemUnderTest& sut, SampleLibrary& qsl, const Settings& settings,
                       const std::function<std::string()>& poll,
                       const std::function<std::shared_ptr<void>()>& issue_thread_scope) {
  validate(settings);
  if (retired()) {
    throw std::runtime_error("this LoadGen abandoned a stuck call in an earlier run and cannot run "
                             "again: create a new one");
  }
  if (running_.exchange(true)) throw std::runtime_error("this LoadGen is already running");
  log_.reset();
  issued_ = 0;
  completed_ = 0;
  bad_completions_ = 0;
  stale_completions_ = 0;
  bad_token_events_ = 0;
  spin_ns_ = 0;
  run_tag_.store((g_last_run_tag.fetch_add(1) + 1) << kRunTagShift);
  abort_ = false;
  errors_.clear();
  measure_first_id_ = measure_end_id_ = 0;
  phase_.store(kLoading);
  phase_start_ns_.store(0);
  last_progress_ns_.store(now_ns());
  in_call_.store(nullptr);
  accepting_.store(true, std::memory_order_seq_cst);

  // What the issue thread uses besides `this`, `sut` and `qsl` lives on the heap, shared with it:
  // an abandoned thread outlives this call's stack.
  struct IssueThread {
    Settings s;
    std::function<std::shared_ptr<void>()> scope;
    std::atomic<bool> done{false};
  };
  auto shared = std::make_shared<IssueThread>();
  shared->s = settings;
  shared->scope = issue_thread_scope;
  SystemUnderTest* sut_p = &sut;
  SampleLibrary* qsl_p = &qsl;
  std::thread issuer([this, shared, sut_p, qsl_p] {
    SystemUnderTest& sut = *sut_p;
    SampleLibrary& qsl = *qsl_p;
    const Settings& s = shared->s;
    std::shared_ptr<void> scope = shared->scope ? shared->scope() : nullptr;
#if defined(__linux__)
    // This thread's sleeps wake within microseconds instead of the default 50 us timer slack,
    // so a Server arrival needs only a short spin to be issued on time.
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
    try {
      if (s.mode == Mode::Accuracy) {
        run_accuracy(sut, qsl, s);
      } else {
        Rng pick(stream_seed(s.sample_seed, Stream::SampleSet));
        loaded_ = choose_distinct(s.total_sample_count, s.performance_sample_count, &pick);
        load_samples(qsl);
        if (!aborted() && (s.warmup_s > 0 || s.warmup_queries > 0)) {
          phase_.store(kWarmup);
          Phase w;
          w.warmup = true;
          w.min_s = s.warmup_s;
          w.min_queries = s.warmup_queries;
          w.samples_per_query = std::max<uint64_t>(1, s.warmup_samples_per_query);
          w.seed = stream_seed(s.sample_seed, Stream::WarmupIndex);
          run_phase(sut, s, w);
          if (!aborted()) flush_sut(sut);
          wait_completed(issued_.load(), s.sample_timeout_s);
        }
        measure_first_id_ = issued_.load();
        if (!aborted()) {
          phase_.store(kMeasure);
          Phase m;
          m.min_s = s.min_duration_s;
          m.max_s = s.max_duration_s;
          m.min_queries = s.min_query_count;
          m.max_queries = s.max_query_count;
          m.samples_per_query =
              s.scenario == Scenario::MultiStream ? std::max<uint64_t>(1, s.samples_per_query) : 1;
          m.seed = stream_seed(s.sample_seed, Stream::SampleIndex);
          run_phase(sut, s, m);
        }
        phase_.store(kDrain);
        if (!aborted()) wait_completed(issued_.load(), s.sample_timeout_s);
        unload_samples(qsl);
      }
    } catch (const std::exception& e) {
      abort(std::string("load generator fault: ") + e.what());
    }
    if (retired()) return;  // abandoned: the run was analysed without this thread
    measure_end_id_ = issued_.load();
    shared->done.store(true, std::memory_order_release);
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  });

  RunOutput out;
  const Settings& s = settings;
  int64_t aborted_at = 0;
  const int64_t grace_ns = int64_t{kAbandonGraceMs} * 1000000;
  while (!shared->done.load(std::memory_order_acquire)) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(20));
    }
    if (shared->done.load(std::memory_order_acquire)) break;
    if (aborted()) {
      // The issue thread has been told to stop; a call that does not come back is abandoned.
      // Nothing is polled meanwhile: a second Ctrl-C is left for the caller (the CLI exits).
      const int64_t t = now_ns();
      if (!aborted_at) aborted_at = t;
      if (t - aborted_at > grace_ns) break;
      continue;
    }
    std::string reason = poll ? poll() : std::string();
    if (!reason.empty()) {
      out.interrupted = true;
      abort(reason);
      continue;
    }
    watchdog(s.sample_timeout_s);
  }
  uint64_t first_id, end_id;
  int64_t start_ns;
  if (shared->done.load(std::memory_order_acquire)) {
    issuer.join();
    first_id = s.mode == Mode::Accuracy ? 0 : measure_first_id_;
    end_id = measure_end_id_;
    start_ns = measure_start_ns_;
  } else {
    const char* call = in_call_.load(std::memory_order_relaxed);
    retired_.store(true, std::memory_order_release);
    issuer.detach();
    out.abandoned = true;
    add_error(std::string("abandoned a stuck call: the system under test's ") +
              (call ? call : "current") + "() on the load generator's issue thread did not " +
              "return within " + std::to_string(kAbandonGraceMs) + " ms of the run's end (its " +
              "thread is left running; its backend is never used again)");
    // The window is what the issue thread had issued: its own bookkeeping never ran. A run
    // abandoned before its measured window has none.
    end_id = issued_.load(std::memory_order_acquire);
    const bool measuring = s.mode == Mode::Accuracy || phase_.load() >= kMeasure;
    first_id = s.mode == Mode::Accuracy ? 0 : measuring ? measure_first_id_ : end_id;
    start_ns = phase_start_ns_.load();
  }
  phase_.store(kDone);
  close_completions();

  out.records = log_.extract(first_id, end_id);
  out.start_ns = start_ns;
  out.first_seq = first_id;
  out.summary = analyze(s, out.records, start_ns);
  uint64_t bad = bad_completions_.load();
  {
    std::lock_guard<std::mutex> lk(mu_);
    out.errors = errors_;
  }
  if (bad) {
    out.errors.push_back(std::to_string(bad) +
                         " completion(s) named a sample id that was not outstanding");
  }
  if (uint64_t bt = bad_token_events_.load()) {
    out.errors.push_back(std::to_string(bt) + " token event(s) named a sample id that was not " +
                         "issued, or a count of 0 or below the sample's previous one");
  }
  out.stale_completions = stale_completions_.load();
  out.spin_ns = spin_ns_.load();
  for (const auto& e : out.errors) out.summary.invalid_reasons.push_back(e);
  if (!out.errors.empty()) out.summary.valid = false;
  log_.reset();
  running_.store(false);
  return out;
}

}  // namespace hwbench
