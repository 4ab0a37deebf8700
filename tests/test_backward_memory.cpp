// Peak memory of the backward (include/moa/model/backward.h): what forward_backward allocates, counted
// by a replaced operator new, against forward_backward_bytes. A binary of its own, so that the
// counting allocator is under no other test.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <new>
#include <vector>

#include "moa/model/backward.h"
#include "moa/attention/kv_cache.h"
#include "moa/model/model.h"

// Every operator new of this test binary is counted, so that GradMemory measures what
// forward_backward allocates instead of restating the formula of forward_backward_bytes. The size
// sits in a 16-byte header (malloc's alignment), so unsized deletes can subtract it.
namespace {
std::atomic<int64_t> g_live_bytes{0}, g_peak_bytes{0};

void* counted_new(std::size_t n) {
  void* p = std::malloc(n + 16);
  if (!p) throw std::bad_alloc();
  *static_cast<std::size_t*>(p) = n;
  const int64_t now = g_live_bytes.fetch_add(int64_t(n)) + int64_t(n);
  int64_t peak = g_peak_bytes.load();
  while (now > peak && !g_peak_bytes.compare_exchange_weak(peak, now)) {
  }
  return static_cast<char*>(p) + 16;
}

void counted_delete(void* p) noexcept {
  if (!p) return;
  char* block = static_cast<char*>(p) - 16;
  g_live_bytes.fetch_sub(int64_t(*reinterpret_cast<std::size_t*>(block)));
  std::free(block);
}
}  // namespace

void* operator new(std::size_t n) { return counted_new(n); }
void* operator new[](std::size_t n) { return counted_new(n); }
void operator delete(void* p) noexcept { counted_delete(p); }
void operator delete[](void* p) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_delete(p); }

namespace moa {
namespace {

// The peak bytes one forward_backward call allocates above what was live before it (grads, ids
// and spec are made first).
int64_t measured_peak_bytes(const Model& m, int64_t T, bool recompute) {
  const ModelConfig& c = m.cfg;
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) ids[size_t(t)] = int32_t((t * 7 + 3) % c.vocab);
  std::vector<float> mask(static_cast<size_t>(T), 1.0f);
  const AttentionSpec spec = AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, T);
  Grads g = Grads::zeros_like(m);
  BackwardOptions opt;
  opt.recompute_layers = recompute;
  const int64_t base = g_live_bytes.load();
  g_peak_bytes.store(base);
  forward_backward(m, spec, ids, mask, &g, opt);
  return g_peak_bytes.load() - base;
}

// forward_backward_bytes is what forward_backward allocates: measured on a small GQA model, the
// peak matches it and grows with T at the rate it states (no N x N term anywhere). The Llama-3-8B
// figures of backward.h are printed from the same function.
TEST(GradMemory, MatchesWhatForwardBackwardAllocates) {
  ModelConfig c;
  c.hidden = 64;
  c.intermediate = 160;
  c.layers = 3;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 16;
  c.vocab = 96;
  c.max_position = 1024;
  const Model m = Model::random(c, 5);
  const int threads = omp_get_max_threads();
  // Not counted by forward_backward_bytes, and not the call's own: matmul pads fewer than 256 rows
  // to a multiple of 16 in thread_local buffers that only grow (weight.cpp); here the LM head's 255
  // loss rows at T = 256 take them to their largest, 256 x (C + V) floats (measured: 165 KB more
  // than forward_backward_bytes on a first call at T = 256). Grown first, they stay out of the
  // measurements below.
  measured_peak_bytes(m, 256, false);
  for (bool rc : {false, true}) {
    SCOPED_TRACE(rc ? "recompute_layers" : "all layers saved");
    std::map<int64_t, int64_t> got, want;
    for (int64_t T : {256, 512, 1024}) {
      got[T] = measured_peak_bytes(m, T, rc);
      want[T] = forward_backward_bytes(c, T, rc, threads);
      std::printf("recompute_layers=%d T %lld: allocated %lld bytes, forward_backward_bytes %lld\n",
                  int(rc), (long long)T, (long long)got[T], (long long)want[T]);
      // Small bookkeeping (about 1 KiB here: vector headers, the thread team's) is extra.
      EXPECT_GE(got[T], want[T]) << "T " << T;
      EXPECT_LE(got[T], want[T] + 16 * 1024) << "T " << T;
    }
    const double per_token = double(got[1024] - got[512]) / 512,
                 stated = double(want[1024] - want[512]) / 512;
    EXPECT_NEAR(per_token, stated, 0.02 * stated);
    EXPECT_EQ(want[1024] - want[512], 2 * (want[512] - want[256])) << "not linear in T";
  }

  ModelConfig l3;  // Llama-3-8B shapes
  l3.hidden = 4096;
  l3.intermediate = 14336;
  l3.layers = 32;
  l3.heads = 32;
  l3.kv_heads = 8;
  l3.head_dim = 128;
  l3.vocab = 128256;
  for (bool rc : {false, true}) {
    const int64_t b1 = forward_backward_bytes(l3, 1024, rc, 2),
                  b2 = forward_backward_bytes(l3, 2048, rc, 2);
    const int64_t per_token = (b2 - b1) / 1024;
    std::printf(
        "Llama-3-8B shapes, recompute_layers=%d: %.2f MB per token (%.1f KB per token per layer), "
        "constant %.1f MB\n",
        int(rc), double(per_token) / 1e6, double(per_token) / 1e3 / double(l3.layers),
        double(b1 - per_token * 1024) / 1e6);
  }
}

}  // namespace
}  // namespace moa
