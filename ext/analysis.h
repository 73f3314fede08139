// Settings of a run and the statistics of its measured window.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rng.h"
#include "sample_log.h"

namespace hwbench {

enum class Scenario : int { SingleStream = 0, MultiStream = 1, Server = 2, Offline = 3 };
enum class Mode : int { Performance = 0, Accuracy = 1 };
/// \brief Server's arrival process. All but Trace are drawn from the schedule seed's stream.
enum class Arrivals : int { Poisson = 0, Gamma = 1, OnOff = 2, Ramp = 3, Trace = 4 };

/// \brief Effective settings of one run; validated by validate().
struct Settings {
  Scenario scenario = Scenario::SingleStream;
  Mode mode = Mode::Performance;
  double min_duration_s = 60.0;
  double max_duration_s = 0.0;        // 0: no limit
  uint64_t min_query_count = 1024;    // Offline: the minimum sample count
  uint64_t max_query_count = 0;       // 0: no limit
  uint64_t total_sample_count = 1;    // size of the workload's sample set
  uint64_t performance_sample_count = 1;  // samples loaded for performance mode
  uint64_t sample_seed = 1;           // which samples queries name
  uint64_t schedule_seed = 2;         // Server arrival times
  double target_latency_percentile = 0.90;
  double latency_bound_s = 0.0;       // Server: required; others: optional (0: none)
  double server_target_qps = 1.0;
  uint64_t samples_per_query = 1;     // MultiStream
  double offline_expected_qps = 1.0;
  double warmup_s = 0.0;
  uint64_t warmup_queries = 0;
  uint64_t warmup_samples_per_query = 1;
  double sample_timeout_s = 60.0;     // no completion for this long: the run is invalid
  // The longest the issue thread busy-waits: before a Server arrival that is due, and for a
  // completion in the sequential scenarios. Beyond it, it sleeps (Server) or waits on a condition
  // variable. 0: it never busy-waits (arrivals may then be late by the OS timer's slack, and the
  // lateness counts as latency). See docs/loadgen.md for what it costs and buys.
  double spin_us = 20.0;
  // Token timing (generative workloads). Server judges the target percentile of time to first
  // token and of time per output token against these bounds, each with early stopping, instead
  // of the query latency bound (MLPerf's LLM benchmarks). 0: that bound is not judged.
  double ttft_bound_s = 0.0;
  double tpot_bound_s = 0.0;
  bool early_stopping = true;
  double early_stopping_confidence = 0.99;
  // Server's arrivals (see arrival_schedule). Poisson at server_target_qps is MLPerf's.
  Arrivals arrivals = Arrivals::Poisson;
  double gamma_cv = 1.0;      // Gamma: the gaps' coefficient of variation (1 is Poisson's)
  double onoff_on_s = 1.0;    // OnOff: mean length of an on period (exponential), seconds
  double onoff_off_s = 1.0;   // OnOff: mean length of an off period
  double onoff_ratio = 10.0;  // OnOff: the on rate over the off rate (>= 1)
  double ramp_from_qps = 0;   // Ramp: the rate at the start,
  double ramp_to_qps = 0;     //   the rate after ramp_over_s, held from then on,
  double ramp_over_s = 0;     //   and how long the linear ramp takes
  std::vector<int64_t> trace_ns;  // Trace: arrival offsets in ns, ascending, replayed once
};

/// \brief Throws std::invalid_argument naming the first setting that is out of range.
void validate(const Settings& s);

struct LatencyStats {
  double min = 0, mean = 0, p50 = 0, p90 = 0, p95 = 0, p97 = 0, p99 = 0, p999 = 0, max = 0;
};

/// \brief Statistics of the measured window. Latencies are in nanoseconds.
struct Summary {
  uint64_t issued_samples = 0;
  uint64_t completed_samples = 0;
  uint64_t issued_queries = 0;
  uint64_t completed_queries = 0;
  double duration_s = 0;
  double samples_per_second = 0;
  double queries_per_second = 0;
  double scheduled_qps = 0;           // Server: arrivals per second of the schedule
  double completed_samples_per_second = 0;  // Server: MLPerf v5's headline, (n - 1) / last completion
  LatencyStats latency;               // per query (Offline: per sample)
  double target_percentile = 0;
  double percentile_latency_ns = 0;   // the target percentile of the measured latencies
  bool early_stopping_supported = false;
  double early_stopping_latency_ns = 0;  // single/multi-stream: upper estimate of the percentile
  uint64_t overlatency_queries = 0;   // queries above the latency bound
  uint64_t early_stopping_min_queries = 0;  // queries needed to judge the percentile at all
  bool early_stopping_met = false;    // MLPerf results.cc's "Early stopping satisfied": the
                                      // estimate could be made (streams) or the over-bound count
                                      // is within what the query count allows (Server)
  bool meets_min_duration = false;
  bool meets_min_queries = false;
  // Token timing: filled when the run had token events (has_tokens), else zero.
  bool has_tokens = false;
  LatencyStats ttft;                  // per completed sample: first token - issue
  LatencyStats tpot;                  // per completed sample of >= 2 tokens:
                                      // (last token - first token) / (tokens - 1)
  uint64_t tpot_samples = 0;          // the samples TPOT is judged over
  double itl_p99_ns = 0;              // p99 of every gap between consecutive token events
  double max_stall_ns = 0;            // the longest such gap within one response
  uint64_t output_tokens = 0;         // tokens of the completed samples
  double tokens_per_second = 0;       // output tokens / duration
  uint64_t good_samples = 0;          // completed within both token bounds (goodput)
  double goodput = 0;                 // good samples per second
  double percentile_ttft_ns = 0;      // the target percentile of TTFT and of TPOT
  double percentile_tpot_ns = 0;
  uint64_t over_ttft = 0;             // samples over the TTFT / TPOT bound
  uint64_t over_tpot = 0;
  bool ttft_met = false;              // Server: the bound held, early stopping included
  bool tpot_met = false;
  std::string metric_name;
  double metric_value = 0;
  bool valid = false;
  std::vector<std::string> invalid_reasons;
};

/// \brief Validates a record's token columns: empty, or one row per sample.
void check_token_columns(const Records& r);

/// \brief Analyses the measured window that began at `start_ns`.
Summary analyze(const Settings& s, const Records& r, int64_t start_ns);

/// \brief The k-th smallest of the sorted values, for percentile p in [0, 1].
double percentile_of_sorted(const std::vector<int64_t>& sorted, double p);

/// \brief MLPerf early stopping's h(t) + t (tolerance 0): the fewest queries at which `overlatency`
/// queries over the bound still pass. SingleStream/MultiStream need h(1) + 1 (64 at p90, 662 at p99).
uint64_t early_stopping_min_queries(uint64_t overlatency, double percentile, double confidence);

/// \brief The largest over-latency count t that `n` queries still pass at (n >= h(t) + t), or -1 if
/// none. For SingleStream/MultiStream the t-th largest latency is MLPerf's percentile estimate.
int64_t early_stopping_max_overlatency(uint64_t n, double percentile, double confidence);

/// \brief Server arrival offsets (ns from the start): a seeded Poisson process at `qps`, at least
/// `min_n` arrivals and running until at least `min_duration_s`.
std::vector<int64_t> server_schedule(double qps, uint64_t min_n, double min_duration_s,
                                     uint64_t seed);

/// \brief Server arrival offsets (ns from the start) for the settings' arrival process: at least
/// `min_query_count` arrivals running until at least `min_duration_s` (a trace: exactly its own).
/// Poisson, Gamma and OnOff keep `server_target_qps` as their mean rate; Ramp's rate goes
/// linearly from ramp_from_qps to ramp_to_qps over ramp_over_s (a non-homogeneous Poisson
/// process), then stays there. OnOff starts in an on period.
std::vector<int64_t> arrival_schedule(const Settings& s);

/// \brief `k` distinct indices of [0, n), seeded (the performance sample set).
std::vector<uint64_t> choose_distinct(uint64_t n, uint64_t k, Rng* rng);

/// \brief Performance-mode sample indices: `n` uniform draws from `loaded`.
std::vector<uint64_t> choose_samples(const std::vector<uint64_t>& loaded, uint64_t n, Rng* rng);

}  // namespace hwbench
