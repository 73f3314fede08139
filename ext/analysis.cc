#include "analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <unordered_set>

namespace hwbench {

namespace {

std::string fmt_ms(double ns) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f ms", ns / 1e6);
  return buf;
}

std::string pct_name(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "p%g", p * 100.0);
  return buf;
}

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}

// log of the binomial probability mass P(X = k) for X ~ B(n, q).
double log_binom_pmf(uint64_t k, uint64_t n, double q) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) +
         k * std::log(q) + (n - k) * std::log1p(-q);
}

// P(X <= t) for X ~ B(n, q), summed in log space for stability.
double binom_cdf(uint64_t t, uint64_t n, double q) {
  double m = -std::numeric_limits<double>::infinity();
  std::vector<double> terms;
  terms.reserve(t + 1);
  for (uint64_t k = 0; k <= t && k <= n; ++k) {
    terms.push_back(log_binom_pmf(k, n, q));
    m = std::max(m, terms.back());
  }
  double s = 0;
  for (double v : terms) s += std::exp(v - m);
  return std::exp(m) * s;
}

}  // namespace

void validate(const Settings& s) {
  require(s.min_duration_s >= 0, "min_duration_s must be >= 0");
  require(s.max_duration_s >= 0, "max_duration_s must be >= 0");
  require(s.total_sample_count >= 1, "total_sample_count must be >= 1");
  require(s.performance_sample_count >= 1, "performance_sample_count must be >= 1");
  require(s.performance_sample_count <= s.total_sample_count,
          "performance_sample_count must not exceed total_sample_count");
  require(s.target_latency_percentile > 0 && s.target_latency_percentile < 1,
          "target_latency_percentile must be in (0, 1)");
  require(s.latency_bound_s >= 0, "latency_bound_s must be >= 0");
  require(s.ttft_bound_s >= 0 && s.tpot_bound_s >= 0, "ttft_bound_s and tpot_bound_s must be >= 0");
  require(s.samples_per_query >= 1, "samples_per_query must be >= 1");
  require(s.sample_timeout_s > 0, "sample_timeout_s must be > 0");
  require(s.warmup_s >= 0, "warmup_s must be >= 0");
  require(s.spin_us >= 0 && s.spin_us <= 1e6, "spin_us must be in [0, 1e6]");
  require(s.early_stopping_confidence > 0 && s.early_stopping_confidence < 1,
          "early_stopping_confidence must be in (0, 1)");
  if (s.scenario == Scenario::Server) {
    require(s.server_target_qps > 0, "server_target_qps must be > 0");
    require(s.latency_bound_s > 0 || s.ttft_bound_s > 0 || s.tpot_bound_s > 0,
            "Server needs latency_bound_s > 0, or a token bound (ttft_bound_s, tpot_bound_s)");
  }
  if (s.scenario == Scenario::Offline) {
    require(s.offline_expected_qps > 0, "offline_expected_qps must be > 0");
  }
  switch (s.arrivals) {
    case Arrivals::Gamma:
      require(s.gamma_cv > 0.01 && s.gamma_cv <= 100, "gamma_cv must be in (0.01, 100]");
      break;
    case Arrivals::OnOff:
      require(s.onoff_on_s > 0 && s.onoff_off_s > 0, "onoff_on_s and onoff_off_s must be > 0");
      require(s.onoff_ratio >= 1, "onoff_ratio must be >= 1");
      break;
    case Arrivals::Ramp:
      require(s.ramp_from_qps >= 0 && s.ramp_to_qps >= 0 && s.ramp_from_qps + s.ramp_to_qps > 0,
              "ramp rates must be >= 0, not both 0");
      require(s.ramp_over_s > 0, "ramp_over_s must be > 0");
      break;
    case Arrivals::Trace:
      require(!s.trace_ns.empty(), "a trace needs at least one arrival");
      for (size_t i = 0; i < s.trace_ns.size(); ++i) {
        require(s.trace_ns[i] >= 0 && (i == 0 || s.trace_ns[i] >= s.trace_ns[i - 1]),
                "trace arrivals must be >= 0 and ascending");
      }
      break;
    default:
      break;
  }
}

double percentile_of_sorted(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  size_t n = sorted.size();
  size_t i = static_cast<size_t>(std::floor(p * static_cast<double>(n)));
  return static_cast<double>(sorted[std::min(i, n - 1)]);
}

uint64_t early_stopping_min_queries(uint64_t overlatency, double percentile, double confidence) {
  // MLPerf's h(t) + t: the fewest queries n with P(X <= t) < 1 - confidence for X ~ B(n, 1 - p),
  // i.e. at which `overlatency` queries over the bound still pass. The CDF falls as n grows.
  const double q = 1.0 - percentile;
  const double alpha = 1.0 - confidence;
  uint64_t lo = overlatency + 1, hi = lo;
  while (binom_cdf(overlatency, hi, q) >= alpha) hi *= 2;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (binom_cdf(overlatency, mid, q) >= alpha) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

int64_t early_stopping_max_overlatency(uint64_t n, double percentile, double confidence) {
  // The largest t with P(X <= t) < 1 - confidence for X ~ B(n, 1 - p), or -1 if even t = 0 fails.
  // Equivalent to MLPerf's search for the largest t with n >= h(t) + t, because h(t) + t <= n
  // exactly when P(B(n, 1 - p) <= t) < 1 - confidence. The CDF grows with t, so walk it upward
  // once, one probability-mass term at a time (O(t), in log space).
  const double q = 1.0 - percentile;
  const double alpha = 1.0 - confidence;
  const double log_ratio = std::log(q) - std::log1p(-q);
  double log_pmf = n * std::log1p(-q);  // P(X = 0)
  double cdf = std::exp(log_pmf);
  if (cdf >= alpha) return -1;
  int64_t t = 0;
  while (static_cast<uint64_t>(t) + 1 < n) {
    log_pmf += std::log(static_cast<double>(n - t)) - std::log(static_cast<double>(t + 1)) +
               log_ratio;
    double next = cdf + std::exp(log_pmf);
    if (next >= alpha) break;
    cdf = next;
    ++t;
  }
  return t;
}

std::vector<int64_t> server_schedule(double qps, uint64_t min_n, double min_duration_s,
                                     uint64_t seed) {
  Rng rng(stream_seed(seed, Stream::Schedule));
  std::vector<int64_t> out;
  out.reserve(min_n);
  double t = 0;
  while (out.size() < min_n || t < min_duration_s) {
    t += rng.exponential(qps);
    out.push_back(static_cast<int64_t>(t * 1e9));
  }
  return out;
}

namespace {

// Ramp: the time at which the ramp's cumulative rate reaches `e` (inverting
// L(t) = a t + (b - a) t^2 / (2 S) up to S, then L(S) + b (t - S)); -1 when it never does.
double ramp_time(double a, double b, double S, double e) {
  const double at_s = 0.5 * (a + b) * S;
  if (e <= at_s) {
    const double k = (b - a) / S;
    return 2.0 * e / (a + std::sqrt(std::max(0.0, a * a + 2.0 * k * e)));
  }
  return b > 0 ? S + (e - at_s) / b : -1.0;
}

}  // namespace

std::vector<int64_t> arrival_schedule(const Settings& s) {
  if (s.arrivals == Arrivals::Poisson) {
    return server_schedule(s.server_target_qps, s.min_query_count, s.min_duration_s,
                           s.schedule_seed);
  }
  if (s.arrivals == Arrivals::Trace) return s.trace_ns;
  Rng rng(stream_seed(s.schedule_seed, Stream::Schedule));
  std::vector<int64_t> out;
  out.reserve(s.min_query_count);
  auto more = [&](double t) { return out.size() < s.min_query_count || t < s.min_duration_s; };
  double t = 0;
  if (s.arrivals == Arrivals::Gamma) {
    // Gaps ~ Gamma(shape 1/cv^2, scale cv^2/qps): mean 1/qps, coefficient of variation cv.
    const double shape = 1.0 / (s.gamma_cv * s.gamma_cv), scale = 1.0 / (shape * s.server_target_qps);
    while (more(t)) {
      t += scale * rng.gamma(shape);
      out.push_back(static_cast<int64_t>(t * 1e9));
    }
  } else if (s.arrivals == Arrivals::OnOff) {
    // Two-state Markov-modulated Poisson: rates r_on = R r_off, mean rate = target.
    const double A = s.onoff_on_s, B = s.onoff_off_s, R = s.onoff_ratio;
    const double off_rate = s.server_target_qps * (A + B) / (A * R + B), on_rate = R * off_rate;
    bool on = true;
    double end = rng.exponential(1.0 / A);
    while (more(t)) {
      const double next = t + rng.exponential(on ? on_rate : off_rate);
      if (next > end) {  // memoryless: restart the draw at the switch, at the other rate
        t = end;
        on = !on;
        end = t + rng.exponential(1.0 / (on ? A : B));
        continue;
      }
      t = next;
      out.push_back(static_cast<int64_t>(t * 1e9));
    }
  } else {  // Ramp
    double e = 0;
    while (more(t)) {
      e += rng.exponential(1.0);
      t = ramp_time(s.ramp_from_qps, s.ramp_to_qps, s.ramp_over_s, e);
      if (t < 0) break;  // a ramp down to 0 ends its arrivals
      out.push_back(static_cast<int64_t>(t * 1e9));
    }
  }
  return out;
}

std::vector<uint64_t> choose_distinct(uint64_t n, uint64_t k, Rng* rng) {
  // Partial Fisher-Yates over [0, n); sorted so samples load in file order.
  std::vector<uint64_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  for (uint64_t i = 0; i < k; ++i) std::swap(all[i], all[i + rng->below(n - i)]);
  all.resize(k);
  std::sort(all.begin(), all.end());
  return all;
}

std::vector<uint64_t> choose_samples(const std::vector<uint64_t>& loaded, uint64_t n, Rng* rng) {
  std::vector<uint64_t> out(n);
  for (auto& v : out) v = loaded[rng->below(loaded.size())];
  return out;
}

namespace {

// Per-query latencies (ns) of completed queries, plus the count of queries issued. A query is
// complete when all its samples are; its latency runs from its issue stamp to its last sample.
// Offline judges each sample of its single query on its own.
void query_latencies(const Settings& s, const Records& r, std::vector<int64_t>* lat,
                     uint64_t* issued_queries, int64_t* last_complete) {
  const size_t n = r.size();
  const bool per_sample = s.scenario == Scenario::Offline;
  lat->reserve(n);
  *issued_queries = 0;
  *last_complete = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i + 1;
    if (!per_sample) {
      while (j < n && r.query[j] == r.query[i]) ++j;
    }
    ++*issued_queries;
    int64_t done = 0;
    bool complete = true;
    for (size_t k = i; k < j; ++k) {
      if (r.complete_ns[k] == 0) {
        complete = false;
        break;
      }
      done = std::max(done, r.complete_ns[k]);
    }
    if (complete) {
      lat->push_back(done - r.issue_ns[i]);
      *last_complete = std::max(*last_complete, done);
    }
    i = j;
  }
}

}  // namespace

namespace {

LatencyStats stats_of_sorted(const std::vector<int64_t>& v) {
  LatencyStats L;
  if (v.empty()) return L;
  L.min = static_cast<double>(v.front());
  L.max = static_cast<double>(v.back());
  long double sum = 0;
  for (int64_t x : v) sum += x;
  L.mean = static_cast<double>(sum / v.size());
  L.p50 = percentile_of_sorted(v, 0.50);
  L.p90 = percentile_of_sorted(v, 0.90);
  L.p95 = percentile_of_sorted(v, 0.95);
  L.p97 = percentile_of_sorted(v, 0.97);
  L.p99 = percentile_of_sorted(v, 0.99);
  L.p999 = percentile_of_sorted(v, 0.999);
  return L;
}

// Server's judgement of one per-sample quantity (TTFT or TPOT) against its bound, as MLPerf
// judges its LLM benchmarks: the target percentile itself within the bound and, with early
// stopping, the over-bound count within what the sample count allows. True when it held.
bool judge_token_bound(const char* what, const std::vector<int64_t>& sorted, int64_t bound_ns,
                       const Settings& s, uint64_t* over, std::vector<std::string>* why) {
  const double p = s.target_latency_percentile, conf = s.early_stopping_confidence;
  const uint64_t n = sorted.size();
  *over = 0;
  for (int64_t v : sorted) *over += (v > bound_ns);
  if (n == 0) {
    why->push_back(std::string("no sample to judge ") + what + " on");
    return false;
  }
  bool ok = true;
  const double at_p = percentile_of_sorted(sorted, p);
  if (at_p > bound_ns) {
    why->push_back(pct_name(p) + " " + what + " " + fmt_ms(at_p) + " exceeds the bound " +
                   fmt_ms(bound_ns));
    ok = false;
  }
  if (s.early_stopping) {
    const int64_t allowed = early_stopping_max_overlatency(n, p, conf);
    if (allowed < 0) {
      why->push_back("too few samples to judge " + pct_name(p) + " " + what + ": " +
                     std::to_string(n) + " completed, early stopping needs at least " +
                     std::to_string(early_stopping_min_queries(0, p, conf)));
      ok = false;
    } else if (static_cast<int64_t>(*over) > allowed) {
      why->push_back(pct_name(p) + " " + what + " bound " + fmt_ms(bound_ns) + " not met: " +
                     std::to_string(*over) + " of " + std::to_string(n) +
                     " samples over the bound, early stopping needs at least " +
                     std::to_string(early_stopping_min_queries(*over, p, conf)) +
                     " samples for that many");
      ok = false;
    }
  }
  return ok;
}

// Token timing of the completed samples: TTFT, TPOT, inter-token latency, stalls, tokens/s,
// goodput; and Server's verdict on the token bounds.
void analyze_tokens(const Settings& s, const Records& r, Summary* m) {
  std::vector<int64_t> ttft, tpot;
  uint64_t tokenless = 0;
  const int64_t ttft_bound = static_cast<int64_t>(s.ttft_bound_s * 1e9);
  const int64_t tpot_bound = static_cast<int64_t>(s.tpot_bound_s * 1e9);
  for (size_t i = 0; i < r.size(); ++i) {
    if (r.complete_ns[i] == 0) continue;
    if (r.token_count[i] == 0) {
      ++tokenless;
      continue;
    }
    const int64_t first = r.first_token_ns[i] - r.issue_ns[i];
    ttft.push_back(first);
    m->output_tokens += r.token_count[i];
    m->max_stall_ns = std::max(m->max_stall_ns, static_cast<double>(r.max_gap_ns[i]));
    bool good = ttft_bound <= 0 || first <= ttft_bound;
    if (r.token_count[i] >= 2) {
      const int64_t per = (r.last_token_ns[i] - r.first_token_ns[i]) /
                          static_cast<int64_t>(r.token_count[i] - 1);
      tpot.push_back(per);
      good = good && (tpot_bound <= 0 || per <= tpot_bound);
    }
    m->good_samples += good;
  }
  std::sort(ttft.begin(), ttft.end());
  std::sort(tpot.begin(), tpot.end());
  m->ttft = stats_of_sorted(ttft);
  m->tpot = stats_of_sorted(tpot);
  m->tpot_samples = tpot.size();
  m->percentile_ttft_ns = percentile_of_sorted(ttft, s.target_latency_percentile);
  m->percentile_tpot_ns = percentile_of_sorted(tpot, s.target_latency_percentile);
  std::vector<int64_t> gaps = r.token_gaps_ns;
  std::sort(gaps.begin(), gaps.end());
  m->itl_p99_ns = percentile_of_sorted(gaps, 0.99);
  if (m->duration_s > 0) {
    m->tokens_per_second = m->output_tokens / m->duration_s;
    m->goodput = m->good_samples / m->duration_s;
  }
  std::vector<std::string>& why = m->invalid_reasons;
  if (tokenless) {
    why.push_back(std::to_string(tokenless) + " sample(s) completed without a token event");
  }
  m->ttft_met = m->tpot_met = true;
  if (s.scenario != Scenario::Server || s.mode == Mode::Accuracy) return;
  if (ttft_bound > 0) m->ttft_met = judge_token_bound("TTFT", ttft, ttft_bound, s, &m->over_ttft, &why);
  if (tpot_bound > 0) m->tpot_met = judge_token_bound("TPOT", tpot, tpot_bound, s, &m->over_tpot, &why);
}

}  // namespace

void check_token_columns(const Records& r) {
  const size_t n = r.size();
  if (r.token_count.empty() && r.first_token_ns.empty() && r.last_token_ns.empty() &&
      r.max_gap_ns.empty()) {
    return;
  }
  if (r.token_count.size() != n || r.first_token_ns.size() != n || r.last_token_ns.size() != n ||
      r.max_gap_ns.size() != n) {
    throw std::invalid_argument("token columns must be empty or one row per sample");
  }
}

Summary analyze(const Settings& s, const Records& r, int64_t start_ns) {
  check_token_columns(r);
  Summary m;
  m.target_percentile = s.target_latency_percentile;
  m.issued_samples = r.size();
  for (int64_t c : r.complete_ns) m.completed_samples += (c != 0);
  std::vector<int64_t> lat;
  int64_t last = 0;
  query_latencies(s, r, &lat, &m.issued_queries, &last);
  m.completed_queries = s.scenario == Scenario::Offline ? (m.completed_samples == m.issued_samples
                                                               && m.issued_samples ? 1 : 0)
                                                         : lat.size();
  m.duration_s = last > start_ns ? static_cast<double>(last - start_ns) / 1e9 : 0.0;
  if (m.duration_s > 0) {
    m.samples_per_second = m.completed_samples / m.duration_s;
    m.queries_per_second = (s.scenario == Scenario::Offline ? m.completed_samples
                                                             : m.completed_queries) /
                           m.duration_s;
  }
  if (s.scenario == Scenario::Server && !r.issue_ns.empty()) {
    double span = static_cast<double>(r.issue_ns.back() - start_ns) / 1e9;
    m.scheduled_qps = span > 0 ? m.issued_queries / span : 0.0;
    // MLPerf v5 (results.cc): (sample count - 1) / the last completion's time since the start;
    // the first sample opens the time range rather than filling it.
    if (m.duration_s > 0 && m.completed_samples > 1) {
      m.completed_samples_per_second = (m.completed_samples - 1) / m.duration_s;
    }
  }
  std::sort(lat.begin(), lat.end());
  if (!lat.empty()) {
    m.latency = stats_of_sorted(lat);
    m.percentile_latency_ns = percentile_of_sorted(lat, s.target_latency_percentile);
  }

  std::vector<std::string>& why = m.invalid_reasons;
  const double p = s.target_latency_percentile;
  const double conf = s.early_stopping_confidence;
  const uint64_t nq = lat.size();
  const int64_t bound_ns = static_cast<int64_t>(s.latency_bound_s * 1e9);
  if (nq == 0) why.push_back("no query completed in the measured window");

  // Offline, accuracy mode and early stopping turned off have nothing to satisfy (as in MLPerf).
  m.early_stopping_met = s.mode == Mode::Accuracy || s.scenario == Scenario::Offline ||
                         !s.early_stopping;
  if (s.mode == Mode::Accuracy) {
    m.meets_min_duration = m.meets_min_queries = true;
    if (m.completed_samples != m.issued_samples || m.issued_samples != s.total_sample_count) {
      why.push_back("accuracy mode did not complete every sample of the set exactly once");
    }
  } else {
    // MLPerf LoadGen (results.cc, MinDurationMet): SingleStream and MultiStream are judged by
    // the final query's issue time, the others by the last completion (Server's schedule always
    // extends past the minimum, so its final scheduled arrival does too).
    const bool by_issue = s.scenario == Scenario::SingleStream ||
                          s.scenario == Scenario::MultiStream;
    double span_s = m.duration_s;
    if (by_issue && !r.issue_ns.empty()) {
      span_s = static_cast<double>(r.issue_ns.back() - start_ns) / 1e9;
    }
    m.meets_min_duration = span_s >= s.min_duration_s;
    const uint64_t counted = s.scenario == Scenario::Offline ? m.completed_samples : nq;
    m.meets_min_queries = counted >= s.min_query_count;
    if (!m.meets_min_duration) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "too short: %.3f s measured%s, the minimum is %.3f s",
                    span_s, by_issue ? " to the last issue" : "",
                    s.min_duration_s);
      why.push_back(buf);
    }
    if (!m.meets_min_queries) {
      why.push_back("too few " + std::string(s.scenario == Scenario::Offline ? "samples" : "queries") +
                    ": " + std::to_string(counted) + " completed, the minimum is " +
                    std::to_string(s.min_query_count));
    }
    const bool streams = s.scenario == Scenario::SingleStream ||
                         s.scenario == Scenario::MultiStream;
    if (streams && nq > 0) {
      // MLPerf: at least h(1) + 1 queries; t is the largest overlatency count the query count
      // supports, and the estimate is the t-th largest latency.
      m.early_stopping_min_queries = early_stopping_min_queries(1, p, conf);
      if (!s.early_stopping) {
        m.early_stopping_latency_ns = m.percentile_latency_ns;
      } else if (nq < m.early_stopping_min_queries) {
        why.push_back("too few queries to judge " + pct_name(p) + " latency: " +
                      std::to_string(nq) + " completed, early stopping needs at least " +
                      std::to_string(m.early_stopping_min_queries));
      } else {
        const int64_t t = early_stopping_max_overlatency(nq, p, conf);
        m.early_stopping_supported = m.early_stopping_met = true;
        m.early_stopping_latency_ns = static_cast<double>(lat[nq - static_cast<uint64_t>(t)]);
      }
      if (bound_ns > 0) {
        for (int64_t v : lat) m.overlatency_queries += (v > bound_ns);
        double judged = s.early_stopping ? m.early_stopping_latency_ns : m.percentile_latency_ns;
        if ((m.early_stopping_supported || !s.early_stopping) && judged > bound_ns) {
          why.push_back((s.early_stopping ? "early-stopping estimate of " : "") + pct_name(p) +
                        " latency " + fmt_ms(judged) + " exceeds the bound " + fmt_ms(bound_ns));
        }
      }
    }
    if (s.scenario == Scenario::Server && nq > 0 && bound_ns > 0) {
      // MLPerf: the percentile itself must be within the bound, and with t queries over the bound
      // the run needs at least h(t) + t queries.
      for (int64_t v : lat) m.overlatency_queries += (v > bound_ns);
      m.early_stopping_min_queries = early_stopping_min_queries(0, p, conf);
      if (m.percentile_latency_ns > bound_ns) {
        why.push_back(pct_name(p) + " latency " + fmt_ms(m.percentile_latency_ns) +
                      " exceeds the bound " + fmt_ms(bound_ns));
      }
      if (s.early_stopping) {
        const int64_t allowed = early_stopping_max_overlatency(nq, p, conf);
        m.early_stopping_supported = allowed >= 0;
        if (!m.early_stopping_supported) {
          why.push_back("too few queries to judge " + pct_name(p) + " latency: " +
                        std::to_string(nq) + " completed, early stopping needs at least " +
                        std::to_string(m.early_stopping_min_queries));
        } else if (static_cast<int64_t>(m.overlatency_queries) <= allowed) {
          m.early_stopping_met = true;
        } else {
          why.push_back(pct_name(p) + " latency bound " + fmt_ms(bound_ns) + " not met: " +
                        std::to_string(m.overlatency_queries) + " of " + std::to_string(nq) +
                        " queries over the bound, early stopping needs at least " +
                        std::to_string(early_stopping_min_queries(m.overlatency_queries, p, conf)) +
                        " queries for that many");
        }
      }
    }
  }
  const bool token_bounds = s.ttft_bound_s > 0 || s.tpot_bound_s > 0;
  if (r.has_tokens()) {
    m.has_tokens = true;
    analyze_tokens(s, r, &m);
    if (s.scenario == Scenario::Server && bound_ns <= 0 && s.mode == Mode::Performance) {
      m.early_stopping_min_queries = early_stopping_min_queries(0, p, conf);
      m.early_stopping_supported = s.early_stopping && nq > 0 &&
                                   early_stopping_max_overlatency(nq, p, conf) >= 0;
      m.early_stopping_met = !s.early_stopping || (m.ttft_met && m.tpot_met);
    }
  } else if (token_bounds && s.mode == Mode::Performance && nq > 0) {
    why.push_back("no token event came: the token bounds cannot be judged (a generative run "
                  "needs a streaming backend)");
  }
  switch (s.scenario) {
    case Scenario::SingleStream:
    case Scenario::MultiStream:
      m.metric_name = pct_name(p) + "_latency_ms";
      m.metric_value = (m.early_stopping_supported ? m.early_stopping_latency_ns
                                                   : m.percentile_latency_ns) / 1e6;
      break;
    case Scenario::Server:
      m.metric_name = "scheduled_qps";
      m.metric_value = m.scheduled_qps;
      break;
    case Scenario::Offline:
      m.metric_name = "samples_per_second";
      m.metric_value = m.samples_per_second;
      break;
  }
  // A generative run's throughput is its tokens (MLPerf's LLM Server and Offline headline).
  if (m.has_tokens && (s.scenario == Scenario::Server || s.scenario == Scenario::Offline)) {
    m.metric_name = "tokens_per_second";
    m.metric_value = m.tokens_per_second;
  }
  m.valid = why.empty();
  return m;
}

}  // namespace hwbench
