// Python bindings: hwbench._loadgen (private; hwbench.loadgen re-exports what users need).
// Only ids, indices and timestamps cross this boundary. The GIL is released while a run is in
// progress and acquired explicitly in every callback into Python.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <memory>

#include "analysis.h"
#include "loadgen.h"
#include "pacer.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace hwbench {
namespace {

template <class T>
using Array1 = nb::ndarray<nb::numpy, T, nb::ndim<1>>;
template <class T>
using InArray = nb::ndarray<const T, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

template <class T>
Array1<T> to_numpy(std::vector<T>&& v) {
  auto* owned = new std::vector<T>(std::move(v));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return Array1<T>(owned->data(), {owned->size()}, owner);
}

template <class T>
Array1<T> copy_to_numpy(const T* data, size_t n) {
  return to_numpy(std::vector<T>(data, data + n));
}

template <class T>
std::vector<T> to_vector(const InArray<T>& a) {
  return std::vector<T>(a.data(), a.data() + a.shape(0));
}

std::string describe_python_error(nb::python_error& e) {
  nb::handle type = e.type();
  std::string name = nb::cast<std::string>(type.attr("__name__"));
  std::string msg = nb::cast<std::string>(nb::str(e.value()));
  return msg.empty() ? name : name + ": " + msg;
}

class PySut final : public SystemUnderTest {
 public:
  PySut(nb::object sut, LoadGen* lg)
      : issue_(sut.attr("issue")), flush_(sut.attr("flush")), lg_(lg) {}
  void issue(const uint64_t* ids, const uint64_t* indices, size_t n) override {
    nb::gil_scoped_acquire gil;
    try {
      issue_(copy_to_numpy(ids, n), copy_to_numpy(indices, n));
    } catch (nb::python_error& e) {
      lg_->abort("system under test failed in issue(): " + describe_python_error(e));
    }
  }
  void flush() override {
    nb::gil_scoped_acquire gil;
    try {
      flush_();
    } catch (nb::python_error& e) {
      lg_->abort("system under test failed in flush(): " + describe_python_error(e));
    }
  }

 private:
  nb::object issue_, flush_;
  LoadGen* lg_;
};

class PyLibrary final : public SampleLibrary {
 public:
  PyLibrary(nb::object qsl, LoadGen* lg) : load_(qsl.attr("load")), unload_(qsl.attr("unload")),
                                           lg_(lg) {}
  void load(const std::vector<uint64_t>& indices) override { call(load_, "load", indices); }
  void unload(const std::vector<uint64_t>& indices) override { call(unload_, "unload", indices); }

 private:
  void call(nb::object& f, const char* what, const std::vector<uint64_t>& indices) {
    nb::gil_scoped_acquire gil;
    try {
      f(copy_to_numpy(indices.data(), indices.size()));
    } catch (nb::python_error& e) {
      lg_->abort(std::string("sample library failed in ") + what + "(): " +
                 describe_python_error(e));
    }
  }
  nb::object load_, unload_;
  LoadGen* lg_;
};

nb::dict records_dict(Records&& r) {
  nb::dict d;
  d["index"] = to_numpy(std::move(r.index));
  d["query"] = to_numpy(std::move(r.query));
  d["issue_ns"] = to_numpy(std::move(r.issue_ns));
  d["complete_ns"] = to_numpy(std::move(r.complete_ns));
  if (r.has_tokens()) {  // only a run with token events has token columns
    d["first_token_ns"] = to_numpy(std::move(r.first_token_ns));
    d["last_token_ns"] = to_numpy(std::move(r.last_token_ns));
    d["token_count"] = to_numpy(std::move(r.token_count));
    d["first_token_value"] = to_numpy(std::move(r.first_token_value));
    d["max_gap_ns"] = to_numpy(std::move(r.max_gap_ns));
    d["token_gaps_ns"] = to_numpy(std::move(r.token_gaps_ns));
  }
  return d;
}

// Keeps one interpreter thread state on the issue thread for the whole run. Without it every
// callback's GIL acquisition would create and destroy a thread state (microseconds per query).
struct IssueThreadState {
  PyGILState_STATE gil;
  PyThreadState* saved;
  IssueThreadState() : gil(PyGILState_Ensure()), saved(PyEval_SaveThread()) {}
  ~IssueThreadState() {
    PyEval_RestoreThread(saved);
    PyGILState_Release(gil);
  }
};

nb::dict run(LoadGen& lg, nb::object sut, nb::object qsl, const Settings& s) {
  // On the heap: a run that abandons its issue thread leaves them to that thread (below).
  auto py_sut = std::make_unique<PySut>(sut, &lg);
  auto py_qsl = std::make_unique<PyLibrary>(qsl, &lg);
  auto poll = []() -> std::string {
    nb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() == 0) return {};
    nb::python_error e;
    if (e.matches(PyExc_KeyboardInterrupt)) return "interrupted by the user (Ctrl-C)";
    return "interrupted by a signal handler: " + describe_python_error(e);
  };
  RunOutput out;
  {
    nb::gil_scoped_release release;
    out = lg.run(*py_sut, *py_qsl, s, poll,
                 [] { return std::shared_ptr<void>(std::make_shared<IssueThreadState>()); });
  }
  if (out.abandoned) {
    // A deliberate leak: the abandoned issue thread may come back from its stuck call at any
    // time and then use the LoadGen, the SUT and the sample library (and the Python objects they
    // hold). None of them may ever be freed; the LoadGen is retired and refuses to run again.
    py_sut.release();
    py_qsl.release();
    nb::find(&lg).release();
    // nanobind lists leaked instances at exit to catch reference-counting bugs; this one is on
    // purpose, and the interpreter only finalises at all when the caller chose not to os._exit.
    nb::set_leak_warnings(false);
  }
  nb::dict d;
  d["summary"] = out.summary;
  d["records"] = records_dict(std::move(out.records));
  d["errors"] = out.errors;
  d["stale_completions"] = out.stale_completions;
  d["spin_ns"] = out.spin_ns;
  d["interrupted"] = out.interrupted;
  d["abandoned"] = out.abandoned;
  d["start_ns"] = out.start_ns;
  d["first_seq"] = out.first_seq;
  return d;
}

}  // namespace
}  // namespace hwbench

NB_MODULE(_loadgen, m) {
  // An id is (run tag << RUN_TAG_SHIFT) | its sequence number within the run.
  m.attr("RUN_TAG_SHIFT") = hwbench::LoadGen::kRunTagShift;
  using namespace hwbench;
  m.doc() = "hwbench's compiled load generator (private: use hwbench.loadgen).";

  nb::enum_<Scenario>(m, "Scenario")
      .value("SingleStream", Scenario::SingleStream)
      .value("MultiStream", Scenario::MultiStream)
      .value("Server", Scenario::Server)
      .value("Offline", Scenario::Offline);
  nb::enum_<Mode>(m, "Mode")
      .value("Performance", Mode::Performance)
      .value("Accuracy", Mode::Accuracy);
  nb::enum_<Arrivals>(m, "Arrivals")
      .value("Poisson", Arrivals::Poisson)
      .value("Gamma", Arrivals::Gamma)
      .value("OnOff", Arrivals::OnOff)
      .value("Ramp", Arrivals::Ramp)
      .value("Trace", Arrivals::Trace);

  nb::class_<Settings>(m, "Settings")
      .def(nb::init<>())
      .def_rw("scenario", &Settings::scenario)
      .def_rw("mode", &Settings::mode)
      .def_rw("min_duration_s", &Settings::min_duration_s)
      .def_rw("max_duration_s", &Settings::max_duration_s)
      .def_rw("min_query_count", &Settings::min_query_count)
      .def_rw("max_query_count", &Settings::max_query_count)
      .def_rw("total_sample_count", &Settings::total_sample_count)
      .def_rw("performance_sample_count", &Settings::performance_sample_count)
      .def_rw("sample_seed", &Settings::sample_seed)
      .def_rw("schedule_seed", &Settings::schedule_seed)
      .def_rw("target_latency_percentile", &Settings::target_latency_percentile)
      .def_rw("latency_bound_s", &Settings::latency_bound_s)
      .def_rw("server_target_qps", &Settings::server_target_qps)
      .def_rw("samples_per_query", &Settings::samples_per_query)
      .def_rw("offline_expected_qps", &Settings::offline_expected_qps)
      .def_rw("warmup_s", &Settings::warmup_s)
      .def_rw("warmup_queries", &Settings::warmup_queries)
      .def_rw("warmup_samples_per_query", &Settings::warmup_samples_per_query)
      .def_rw("sample_timeout_s", &Settings::sample_timeout_s)
      .def_rw("spin_us", &Settings::spin_us)
      .def_rw("arrivals", &Settings::arrivals)
      .def_rw("gamma_cv", &Settings::gamma_cv)
      .def_rw("onoff_on_s", &Settings::onoff_on_s)
      .def_rw("onoff_off_s", &Settings::onoff_off_s)
      .def_rw("onoff_ratio", &Settings::onoff_ratio)
      .def_rw("ramp_from_qps", &Settings::ramp_from_qps)
      .def_rw("ramp_to_qps", &Settings::ramp_to_qps)
      .def_rw("ramp_over_s", &Settings::ramp_over_s)
      .def_rw("trace_ns", &Settings::trace_ns)
      .def_rw("ttft_bound_s", &Settings::ttft_bound_s)
      .def_rw("tpot_bound_s", &Settings::tpot_bound_s)
      .def_rw("early_stopping", &Settings::early_stopping)
      .def_rw("early_stopping_confidence", &Settings::early_stopping_confidence);

  nb::class_<LatencyStats>(m, "LatencyStats")
      .def_ro("min", &LatencyStats::min)
      .def_ro("mean", &LatencyStats::mean)
      .def_ro("p50", &LatencyStats::p50)
      .def_ro("p90", &LatencyStats::p90)
      .def_ro("p95", &LatencyStats::p95)
      .def_ro("p97", &LatencyStats::p97)
      .def_ro("p99", &LatencyStats::p99)
      .def_ro("p999", &LatencyStats::p999)
      .def_ro("max", &LatencyStats::max);

  nb::class_<Summary>(m, "Summary")
      .def_ro("issued_samples", &Summary::issued_samples)
      .def_ro("completed_samples", &Summary::completed_samples)
      .def_ro("issued_queries", &Summary::issued_queries)
      .def_ro("completed_queries", &Summary::completed_queries)
      .def_ro("duration_s", &Summary::duration_s)
      .def_ro("samples_per_second", &Summary::samples_per_second)
      .def_ro("queries_per_second", &Summary::queries_per_second)
      .def_ro("scheduled_qps", &Summary::scheduled_qps)
      .def_ro("completed_samples_per_second", &Summary::completed_samples_per_second)
      .def_ro("latency", &Summary::latency)
      .def_ro("target_percentile", &Summary::target_percentile)
      .def_ro("percentile_latency_ns", &Summary::percentile_latency_ns)
      .def_ro("early_stopping_supported", &Summary::early_stopping_supported)
      .def_ro("early_stopping_latency_ns", &Summary::early_stopping_latency_ns)
      .def_ro("overlatency_queries", &Summary::overlatency_queries)
      .def_ro("early_stopping_min_queries", &Summary::early_stopping_min_queries)
      .def_ro("early_stopping_met", &Summary::early_stopping_met)
      .def_ro("meets_min_duration", &Summary::meets_min_duration)
      .def_ro("meets_min_queries", &Summary::meets_min_queries)
      .def_ro("metric_name", &Summary::metric_name)
      .def_ro("metric_value", &Summary::metric_value)
      .def_ro("has_tokens", &Summary::has_tokens)
      .def_ro("ttft", &Summary::ttft)
      .def_ro("tpot", &Summary::tpot)
      .def_ro("tpot_samples", &Summary::tpot_samples)
      .def_ro("itl_p99_ns", &Summary::itl_p99_ns)
      .def_ro("max_stall_ns", &Summary::max_stall_ns)
      .def_ro("output_tokens", &Summary::output_tokens)
      .def_ro("tokens_per_second", &Summary::tokens_per_second)
      .def_ro("good_samples", &Summary::good_samples)
      .def_ro("goodput", &Summary::goodput)
      .def_ro("percentile_ttft_ns", &Summary::percentile_ttft_ns)
      .def_ro("percentile_tpot_ns", &Summary::percentile_tpot_ns)
      .def_ro("over_ttft", &Summary::over_ttft)
      .def_ro("over_tpot", &Summary::over_tpot)
      .def_ro("ttft_met", &Summary::ttft_met)
      .def_ro("tpot_met", &Summary::tpot_met)
      .def_ro("valid", &Summary::valid)
      .def_ro("invalid_reasons", &Summary::invalid_reasons);

  nb::class_<LoadGen>(m, "LoadGen")
      .def(nb::init<>())
      .def("run", &run, "sut"_a, "qsl"_a, "settings"_a,
           "Runs warm-up and the measured window; blocks with the GIL released.")
      .def(
          "complete",
          [](LoadGen& lg, const InArray<uint64_t>& ids) { lg.complete(ids.data(), ids.shape(0)); },
          "ids"_a, "Marks samples complete (one timestamp per call). Thread-safe.")
      .def(
          "tokens",
          [](LoadGen& lg, const InArray<uint64_t>& ids, const InArray<uint32_t>& counts,
             std::optional<InArray<int64_t>> first) {
            if (ids.shape(0) != counts.shape(0)) {
              throw std::invalid_argument("tokens(): ids and counts differ in length");
            }
            if (first && first->shape(0) != ids.shape(0)) {
              throw std::invalid_argument("tokens(): ids and first differ in length");
            }
            lg.tokens(ids.data(), counts.data(), ids.shape(0), first ? first->data() : nullptr);
          },
          "ids"_a, "counts"_a, "first"_a = nb::none(),
          "Token events: tokens generated so far per id (one timestamp per call; an id's first "
          "event is its first token, whose value `first` gives when given). Thread-safe.")
      .def("abort", &LoadGen::abort, "reason"_a,
           "Stops the run as soon as possible, marking it invalid. Thread-safe.")
      .def("is_aborted", &LoadGen::is_aborted, "True once the run was aborted. Thread-safe.")
      .def_prop_ro("retired", &LoadGen::retired,
                   "True once a run abandoned a stuck call: this LoadGen never runs again.")
      .def(
          "progress",
          [](const LoadGen& lg) {
            Progress p = lg.progress();
            return nb::make_tuple(p.phase, p.elapsed_s, p.issued, p.completed);
          },
          "(phase, elapsed_s, issued, completed). Thread-safe.")
      .def_static("now_ns", &LoadGen::now_ns, "The load generator's steady clock, in ns.");

  m.def(
      "analyze",
      [](const Settings& s, const InArray<uint64_t>& index, const InArray<uint64_t>& query,
         const InArray<int64_t>& issue_ns, const InArray<int64_t>& complete_ns, int64_t start_ns,
         std::optional<InArray<int64_t>> first_token_ns,
         std::optional<InArray<int64_t>> last_token_ns,
         std::optional<InArray<uint32_t>> token_count, std::optional<InArray<int64_t>> max_gap_ns,
         std::optional<InArray<int64_t>> token_gaps_ns) {
        Records r;
        r.index = to_vector(index);
        r.query = to_vector(query);
        r.issue_ns = to_vector(issue_ns);
        r.complete_ns = to_vector(complete_ns);
        if (r.query.size() != r.index.size() || r.issue_ns.size() != r.index.size() ||
            r.complete_ns.size() != r.index.size()) {
          throw std::invalid_argument("record columns differ in length");
        }
        if (token_count) {
          if (!first_token_ns || !last_token_ns) {
            throw std::invalid_argument("token_count needs first_token_ns and last_token_ns");
          }
          r.first_token_ns = to_vector(*first_token_ns);
          r.last_token_ns = to_vector(*last_token_ns);
          r.token_count = to_vector(*token_count);
          r.max_gap_ns = max_gap_ns ? to_vector(*max_gap_ns)
                                    : std::vector<int64_t>(r.token_count.size(), 0);
          if (token_gaps_ns) r.token_gaps_ns = to_vector(*token_gaps_ns);
          check_token_columns(r);
        }
        nb::gil_scoped_release release;
        return analyze(s, r, start_ns);
      },
      "settings"_a, "index"_a, "query"_a, "issue_ns"_a, "complete_ns"_a, "start_ns"_a,
      "first_token_ns"_a = nb::none(), "last_token_ns"_a = nb::none(),
      "token_count"_a = nb::none(), "max_gap_ns"_a = nb::none(), "token_gaps_ns"_a = nb::none(),
      "Analyses a recorded window (the same code a run uses); token columns optional.");
  nb::class_<TokenPacer>(m, "TokenPacer")
      .def(
          "__init__",
          [](TokenPacer* p, LoadGen& lg, int64_t prefill_ns, int64_t token_ns, int64_t spin_ns,
             int64_t first_value) {
            if (prefill_ns < 0 || token_ns < 0 || spin_ns < 0) {
              throw std::invalid_argument("TokenPacer: times must be >= 0");
            }
            new (p) TokenPacer(&lg, prefill_ns, token_ns, spin_ns, first_value);
          },
          "loadgen"_a, "prefill_ns"_a, "token_ns"_a, "spin_ns"_a = 100000, "first_value"_a = 0,
          nb::keep_alive<1, 2>(),
          "A compiled serving loop that reports tokens on a fixed pace (the null backend's).")
      .def(
          "submit",
          [](TokenPacer& p, const InArray<uint64_t>& ids, const InArray<uint32_t>& lengths,
             std::optional<InArray<int64_t>> prefill_ns) {
            if (ids.shape(0) != lengths.shape(0)) {
              throw std::invalid_argument("submit(): ids and lengths differ in length");
            }
            if (prefill_ns && prefill_ns->shape(0) != ids.shape(0)) {
              throw std::invalid_argument("submit(): ids and prefill_ns differ in length");
            }
            const int64_t* prefill = prefill_ns ? prefill_ns->data() : nullptr;
            for (size_t i = 0; prefill && i < ids.shape(0); ++i) {
              if (prefill[i] < 0) throw std::invalid_argument("submit(): prefill_ns must be >= 0");
            }
            p.submit(ids.data(), lengths.data(), ids.shape(0), prefill);
          },
          "ids"_a, "lengths"_a, "prefill_ns"_a = nb::none(),
          "Queues requests of these lengths, due from now (after each one's own prefill_ns when "
          "given, else the pacer's). Thread-safe.")
      .def("drain", &TokenPacer::drain, nb::call_guard<nb::gil_scoped_release>(),
           "Blocks (GIL released) until every submitted request completed.")
      .def("stop", &TokenPacer::stop, nb::call_guard<nb::gil_scoped_release>(),
           "Ends the pacer's thread; idempotent.")
      .def("outstanding", &TokenPacer::outstanding, "Requests not yet complete.");
  m.def(
      "server_schedule",
      [](double qps, uint64_t min_n, double min_duration_s, uint64_t seed) {
        if (!(qps > 0)) throw std::invalid_argument("qps must be > 0");
        return to_numpy(server_schedule(qps, min_n, min_duration_s, seed));
      },
      "qps"_a, "min_n"_a, "min_duration_s"_a, "seed"_a,
      "Server arrival offsets in ns: a seeded Poisson process.");
  m.def(
      "arrival_schedule",
      [](const Settings& s) {
        validate(s);
        return to_numpy(arrival_schedule(s));
      },
      "settings"_a, "Server arrival offsets in ns for the settings' arrival process.");
  m.def("early_stopping_min_queries", &early_stopping_min_queries, "overlatency"_a,
        "percentile"_a, "confidence"_a,
        "MLPerf early stopping's h(t) + t: the fewest queries at which t over the bound pass.");
  m.def("early_stopping_max_overlatency", &early_stopping_max_overlatency, "n"_a, "percentile"_a,
        "confidence"_a, "The largest over-bound count n queries pass at, or -1 if none.");
  m.def(
      "spin_for_ns",
      [](int64_t ns) {
        nb::gil_scoped_release release;
        const int64_t end = LoadGen::now_ns() + ns;
        while (LoadGen::now_ns() < end) {
        }
      },
      "ns"_a, "Busy-waits (GIL released): a simulated service time for the null backend.");
  m.def("validate", &validate, "settings"_a, "Raises ValueError for settings out of range.");
}
