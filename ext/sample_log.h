// Per-sample record of a run, written concurrently by the issue thread and completing threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace hwbench {

/// \brief Columns of the measured window, one row per issued sample (in issue order).
struct Records {
  std::vector<uint64_t> index;     // sample index in the workload's sample set
  std::vector<uint64_t> query;     // query sequence number; a query's samples are contiguous
  std::vector<int64_t> issue_ns;   // scheduled arrival (Server) or issue time, steady clock
  std::vector<int64_t> complete_ns;  // completion time, or 0 if the sample never completed
  // Token timing: empty when no token event came in the run (a non-generative workload), else
  // one row per sample like the columns above. 0 / 0 count: the sample got no token.
  std::vector<int64_t> first_token_ns;  // the first token's event (time to first token)
  std::vector<int64_t> last_token_ns;   // the latest token's event
  std::vector<uint32_t> token_count;    // tokens generated (the last event's count)
  std::vector<int64_t> max_gap_ns;      // the longest gap between consecutive token events
  // The first token's value as its event reported it (-1: not reported): an audit compares it
  // with the first token of the request's output.
  std::vector<int64_t> first_token_value;
  // Every gap between consecutive token events of a sample of the window (inter-token latency),
  // in no particular order; a call that reports k tokens at once counts as one gap.
  std::vector<int64_t> token_gaps_ns;
  size_t size() const { return index.size(); }
  bool has_tokens() const { return !token_count.empty(); }
};

/// \brief Token timing of the samples of one block, allocated on a run's first token event for
/// an id in that block: a run without token events never allocates or touches one.
struct TokenBlock {
  static constexpr uint64_t kSize = uint64_t{1} << 16;
  std::atomic<int64_t> first_ns[kSize];
  std::atomic<int64_t> last_ns[kSize];
  std::atomic<int64_t> max_gap_ns[kSize];
  std::atomic<uint32_t> count[kSize];
  std::atomic<int64_t> first_value[kSize];  // -1: the first event reported no value
  TokenBlock() {
    for (uint64_t i = 0; i < kSize; ++i) {
      first_ns[i].store(0, std::memory_order_relaxed);
      last_ns[i].store(0, std::memory_order_relaxed);
      max_gap_ns[i].store(0, std::memory_order_relaxed);
      count[i].store(0, std::memory_order_relaxed);
      first_value[i].store(-1, std::memory_order_relaxed);
    }
  }
};

/// \brief Fixed-capacity, block-allocated log indexed by sample id.
///
/// Blocks are only allocated by the issue thread, before the ids they hold are issued, and the
/// block table never moves, so completing threads can write a slot without a lock.
class SampleLog {
 public:
  static constexpr uint64_t kBlockBits = 16;
  static constexpr uint64_t kBlockSize = uint64_t{1} << kBlockBits;
  static constexpr uint64_t kMaxBlocks = uint64_t{1} << 16;  // 4.29e9 samples per run

  struct Block {
    uint64_t index[kBlockSize];
    uint64_t query[kBlockSize];
    int64_t issue_ns[kBlockSize];
    std::atomic<int64_t> complete_ns[kBlockSize];
  };

  SampleLog()
      : blocks_(new std::unique_ptr<Block>[kMaxBlocks]),
        tokens_(new std::atomic<TokenBlock*>[kMaxBlocks]) {
    for (uint64_t b = 0; b < kMaxBlocks; ++b) tokens_[b].store(nullptr, std::memory_order_relaxed);
  }
  ~SampleLog() { reset(); }
  static_assert(TokenBlock::kSize == kBlockSize, "token blocks mirror sample blocks");

  /// \brief Issue thread only: makes ids below `n` writable. Returns false past capacity.
  bool reserve(uint64_t n) {
    while (capacity_ < n) {
      uint64_t b = capacity_ >> kBlockBits;
      if (b >= kMaxBlocks) return false;
      blocks_[b].reset(new Block());  // value-initialised: complete_ns starts at 0
      capacity_ += kBlockSize;
    }
    return true;
  }
  /// \brief Frees every block; only between runs.
  void reset() {
    for (uint64_t b = 0; b < (capacity_ >> kBlockBits); ++b) {
      blocks_[b].reset();
      delete tokens_[b].exchange(nullptr, std::memory_order_acq_rel);
    }
    capacity_ = 0;
    has_tokens_.store(false, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lk(gaps_mu_);
    gaps_.clear();
  }
  Block& block(uint64_t id) { return *blocks_[id >> kBlockBits]; }
  static size_t slot(uint64_t id) { return static_cast<size_t>(id & (kBlockSize - 1)); }

  /// \brief The token block of an issued id, allocated on first use. Any thread; lock-free
  /// (two threads that race to allocate it keep the first and free the other).
  TokenBlock& tokens(uint64_t id) {
    std::atomic<TokenBlock*>& slot_ref = tokens_[id >> kBlockBits];
    TokenBlock* tb = slot_ref.load(std::memory_order_acquire);
    if (tb) return *tb;
    auto* fresh = new TokenBlock();
    if (slot_ref.compare_exchange_strong(tb, fresh, std::memory_order_acq_rel)) {
      has_tokens_.store(true, std::memory_order_relaxed);
      return *fresh;
    }
    delete fresh;
    return *tb;
  }
  /// \brief Appends (sequence number, gap) pairs of one token event call. Any thread.
  void add_gaps(const std::vector<std::pair<uint64_t, int64_t>>& gaps) {
    std::lock_guard<std::mutex> lk(gaps_mu_);
    gaps_.insert(gaps_.end(), gaps.begin(), gaps.end());
  }

  /// \brief Copies ids [first, end) into columns.
  Records extract(uint64_t first, uint64_t end) {
    Records r;
    size_t n = static_cast<size_t>(end - first);
    r.index.resize(n);
    r.query.resize(n);
    r.issue_ns.resize(n);
    r.complete_ns.resize(n);
    for (size_t i = 0; i < n; ++i) {
      uint64_t id = first + i;
      Block& b = block(id);
      size_t s = slot(id);
      r.index[i] = b.index[s];
      r.query[i] = b.query[s];
      r.issue_ns[i] = b.issue_ns[s];
      r.complete_ns[i] = b.complete_ns[s].load(std::memory_order_relaxed);
    }
    if (has_tokens_.load(std::memory_order_relaxed)) extract_tokens(first, end, &r);
    return r;
  }

 private:
  void extract_tokens(uint64_t first, uint64_t end, Records* r) {
    size_t n = static_cast<size_t>(end - first);
    r->first_token_ns.assign(n, 0);
    r->last_token_ns.assign(n, 0);
    r->token_count.assign(n, 0);
    r->max_gap_ns.assign(n, 0);
    r->first_token_value.assign(n, -1);
    for (size_t i = 0; i < n; ++i) {
      uint64_t id = first + i;
      TokenBlock* tb = tokens_[id >> kBlockBits].load(std::memory_order_acquire);
      if (!tb) continue;
      size_t s = slot(id);
      r->first_token_ns[i] = tb->first_ns[s].load(std::memory_order_relaxed);
      r->last_token_ns[i] = tb->last_ns[s].load(std::memory_order_relaxed);
      r->token_count[i] = tb->count[s].load(std::memory_order_relaxed);
      r->max_gap_ns[i] = tb->max_gap_ns[s].load(std::memory_order_relaxed);
      r->first_token_value[i] = tb->first_value[s].load(std::memory_order_relaxed);
    }
    std::lock_guard<std::mutex> lk(gaps_mu_);
    for (const auto& g : gaps_) {
      if (g.first >= first && g.first < end) r->token_gaps_ns.push_back(g.second);
    }
  }

  std::unique_ptr<std::unique_ptr<Block>[]> blocks_;
  std::unique_ptr<std::atomic<TokenBlock*>[]> tokens_;
  std::atomic<bool> has_tokens_{false};
  std::mutex gaps_mu_;
  std::vector<std::pair<uint64_t, int64_t>> gaps_;  // (sequence number, gap ns)
  uint64_t capacity_ = 0;
};

}  // namespace hwbench
