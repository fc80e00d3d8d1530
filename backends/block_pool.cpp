#include "backends/block_pool.h"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace mmgrad {
namespace {

constexpr size_t kMinBlock = 512;               // every size is rounded to this
constexpr size_t kSmallRequest = 1 << 20;       // <= 1 MiB: small blocks
constexpr size_t kSmallSegment = 2 << 20;       // their segments
constexpr size_t kMidRequest = 10 << 20;        // < 10 MiB: share 20 MiB segments
constexpr size_t kMidSegment = 20 << 20;
constexpr size_t kSegmentRound = 2 << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

struct Block {
  char* ptr = nullptr;
  size_t size = 0;
  bool allocated = false;
  bool small = false;
  Block* prev = nullptr;  // neighbours within the same segment
  Block* next = nullptr;
  int pool = 0;           // 0: the shared pool; else a graph's pool
};

struct BySizeThenAddress {
  bool operator()(const Block* a, const Block* b) const {
    return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
  }
};

struct Pool {
  std::set<Block*, BySizeThenAddress> small_free, large_free;
  std::vector<Block*> segments;  // each segment's first block (never merged away)
  std::vector<Block*> held;      // shared-pool blocks freed while this pool's graph was recorded
};

}  // namespace

struct BlockPool::State {
  Segments source;
  std::unordered_map<int, Pool> pools{{0, Pool{}}};  // 0: shared; others: graphs' pools
  int recording_pool = 0;                            // the pool of the graph being recorded, if any
  std::thread::id recorder;                          // the thread recording it
  int next_pool_id = 1;
  std::unordered_map<char*, Block*> live;
  std::unordered_map<char*, size_t> segment_bytes;   // segment start -> size obtained
  BlockPoolStats stats;
  size_t limit = 0;

  // A block no one uses any more goes back to its pool's free blocks, merged with free
  // neighbours of its segment.
  void release_block(Block* block) {
    stats.in_use -= block->size;
    block->allocated = false;
    Pool& pool = pools[block->pool];
    auto& free_blocks = block->small ? pool.small_free : pool.large_free;
    for (Block* nb : {block->prev, block->next}) {
      if (!nb || nb->allocated) continue;
      free_blocks.erase(nb);
      if (nb == block->prev) {
        nb->size += block->size;
        nb->next = block->next;
        if (block->next) block->next->prev = nb;
        delete block;
        block = nb;
      } else {
        block->size += nb->size;
        block->next = nb->next;
        if (nb->next) nb->next->prev = block;
        delete nb;
      }
    }
    free_blocks.insert(block);
  }

  void* obtain(size_t bytes) {
    if (limit && stats.reserved + bytes > limit) return nullptr;
    return source.allocate(bytes);
  }

  Block* new_segment(size_t bytes, bool small) {
    void* p = obtain(bytes);
    if (!p && recording_pool == 0) {
      release_free_segments();  // give the cache back and try once more
      p = obtain(bytes);
    }
    if (!p) return nullptr;
    stats.reserved += bytes;
    stats.segments += 1;
    stats.malloc_calls += 1;
    Block* b = new Block{static_cast<char*>(p), bytes, false, small, nullptr, nullptr, 0};
    segment_bytes[b->ptr] = bytes;
    return b;
  }

  void release_free_segments() {
    if (recording_pool != 0) return;
    Pool& shared = pools[0];
    for (auto* free_blocks : {&shared.small_free, &shared.large_free}) {
      for (auto it = free_blocks->begin(); it != free_blocks->end();) {
        Block* b = *it;
        if (!b->prev && !b->next && segment_bytes.count(b->ptr)) {
          source.release(b->ptr);
          stats.reserved -= segment_bytes[b->ptr];
          stats.segments -= 1;
          segment_bytes.erase(b->ptr);
          shared.segments.erase(std::find(shared.segments.begin(), shared.segments.end(), b));
          delete b;
          it = free_blocks->erase(it);
        } else {
          ++it;
        }
      }
    }
  }
};

BlockPool::BlockPool(Segments segments) : s_(std::make_unique<State>()) { s_->source = std::move(segments); }

BlockPool::~BlockPool() {
  for (auto& [id, pool] : s_->pools)
    for (Block* first : pool.segments)
      for (Block* b = first; b;) {
        Block* next = b->next;
        delete b;
        b = next;
      }
}

size_t BlockPool::segment_bytes_for(size_t nbytes) {
  const size_t size = round_up(std::max<size_t>(nbytes, 1), kMinBlock);
  if (size <= kSmallRequest) return kSmallSegment;
  if (size < kMidRequest) return kMidSegment;
  return round_up(size, kSegmentRound);
}

void* BlockPool::allocate(size_t nbytes, std::thread::id caller) {
  State& s = *s_;
  const size_t size = round_up(std::max<size_t>(nbytes, 1), kMinBlock);
  const bool small = size <= kSmallRequest;
  // Only the recording thread's allocations belong to the graph being recorded.
  const int pool_id = s.recording_pool != 0 && caller == s.recorder ? s.recording_pool : 0;
  Pool& pool = s.pools[pool_id];
  auto& free_blocks = small ? pool.small_free : pool.large_free;
  Block key;
  key.size = size;
  auto it = free_blocks.lower_bound(&key);  // the smallest free block that fits
  Block* block;
  if (it != free_blocks.end()) {
    block = *it;
    free_blocks.erase(it);
  } else {
    block = s.new_segment(segment_bytes_for(nbytes), small);
    if (!block) return nullptr;
    block->pool = pool_id;
    pool.segments.push_back(block);
  }
  const size_t remainder = block->size - size;
  if (remainder >= (small ? kMinBlock : kSmallRequest)) {
    Block* rest = new Block{block->ptr + size, remainder, false, small, block, block->next, block->pool};
    if (block->next) block->next->prev = rest;
    block->next = rest;
    block->size = size;
    free_blocks.insert(rest);
  }
  block->allocated = true;
  s.live[block->ptr] = block;
  s.stats.in_use += block->size;
  s.stats.peak_in_use = std::max(s.stats.peak_in_use, s.stats.in_use);
  return block->ptr;
}

void BlockPool::deallocate(void* ptr) {
  State& s = *s_;
  auto it = s.live.find(static_cast<char*>(ptr));
  if (it == s.live.end()) return;
  Block* block = it->second;
  s.live.erase(it);
  if (s.recording_pool != 0 && block->pool != s.recording_pool) {
    // Memory from outside the graph freed while it is recorded: if the graph used it, every
    // replay touches it again, so nothing else may have it until the graph is gone (held
    // whichever thread frees it: holding is only ever too careful).
    s.pools[s.recording_pool].held.push_back(block);
    return;
  }
  s.release_block(block);
}

int BlockPool::begin_graph_pool(std::thread::id recorder) {
  State& s = *s_;
  if (s.recording_pool != 0) fail("cuda graph", "a CUDA graph is already being captured");
  s.recording_pool = s.next_pool_id++;
  s.recorder = recorder;
  s.pools[s.recording_pool];
  return s.recording_pool;
}

void BlockPool::end_graph_pool() { s_->recording_pool = 0; }

bool BlockPool::recording() const { return s_->recording_pool != 0; }

void BlockPool::release_graph_pool(int id) {
  State& s = *s_;
  auto found = s.pools.find(id);
  if (found == s.pools.end() || id == 0) return;
  Pool& pool = found->second;
  Pool& shared = s.pools[0];
  for (Block* first : pool.segments)
    for (Block* b = first; b; b = b->next) b->pool = 0;
  for (Block* b : pool.small_free) shared.small_free.insert(b);
  for (Block* b : pool.large_free) shared.large_free.insert(b);
  for (Block* b : pool.segments) shared.segments.push_back(b);
  std::vector<Block*> held = std::move(pool.held);
  s.pools.erase(found);
  for (Block* b : held) s.release_block(b);
}

void BlockPool::release_free_segments() { s_->release_free_segments(); }

BlockPoolStats BlockPool::stats() const { return s_->stats; }
void BlockPool::reset_peak() { s_->stats.peak_in_use = s_->stats.in_use; }
void BlockPool::set_limit(size_t bytes) { s_->limit = bytes; }
size_t BlockPool::limit() const { return s_->limit; }

}  // namespace mmgrad
