// Per-sample record of a run, written concurrently by the issue thread and completing threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace hwbench {

/// \brief Columns of the measured window, one row per issued sample (in issue order).
struct Records {
  std::vector<uint64_t> index;     // sample index in the workload's sample set
  std::vector<uint64_t> query;     // query sequence number; a query's samples are contiguous
  std::vector<int64_t> issue_ns;   // scheduled arrival (Server) or issue time, steady clock
  std::vector<int64_t> complete_ns;  // completion time, or 0 if the sample never completed
  size_t size() const { return index.size(); }
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

  SampleLog() : blocks_(new std::unique_ptr<Block>[kMaxBlocks]) {}

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
    for (uint64_t b = 0; b < (capacity_ >> kBlockBits); ++b) blocks_[b].reset();
    capacity_ = 0;
  }
  Block& block(uint64_t id) { return *blocks_[id >> kBlockBits]; }
  static size_t slot(uint64_t id) { return static_cast<size_t>(id & (kBlockSize - 1)); }

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
    return r;
  }

 private:
  std::unique_ptr<std::unique_ptr<Block>[]> blocks_;
  uint64_t capacity_ = 0;
};

}  // namespace hwbench
