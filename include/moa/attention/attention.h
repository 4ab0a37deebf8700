// Attention kernels over sink + window spans. Work is proportional to the kept entries: each
// query row visits only its sink and its band, never an N x N score matrix.
#pragma once

#include <cstdint>

#include "moa/attention/attention_spec.h"

namespace moa {

class WindowCache;

// Prefill of positions [0, T) of one layer from the fresh (post-RoPE) keys and values.
// q: (T, H, D)  k, v: (T, G, D)  out: (T, H, D)
// col_sums (optional, H2O): (H, T), receives each key's attention probability summed over queries.
void attention_prefill(const AttentionSpec& spec, int64_t layer, const float* q, const float* k,
                       const float* v, int64_t T, float* out, float* col_sums = nullptr);

// Tiled forward (flash-attention style) used by prefill and training: q (T,H,D)  k,v (T,G,D)
// out (T,H,D)  lse (H,T) = per-row log-sum-exp, for the backward.
constexpr int64_t kAttnTile = 64;
void attention_forward(const AttentionSpec& spec, int64_t layer, const float* q, const float* k,
                       const float* v, int64_t T, float* out, float* lse, int64_t tile = kAttnTile);

// Backward of attention_forward (src/attention/attention_backward.cpp), beside it because both
// walk the same tiles (attention_tiles.h).
// Attention with the sink + window mask of `spec`'s layer (query i sees key j iff j <= i and
// (j < sink_h or i - j < window_h)) and GQA (query head h reads KV head h / (H / G)).
// q: (T, H, D)  k, v: (T, G, D)  out: (T, H, D)  lse: (H, T) log-sum-exp of each scaled score row.
// `tile` is the square tile edge (tests use small tiles to cross tile edges with small T).
// dq (T, H, D) += ..., dk, dv (T, G, D) += ...  given dout (T, H, D) and the forward's out, lse.
// Two passes, both recomputing P tile by tile: (head, query tile) units own dq rows, (KV head,
// key tile) units own dk/dv rows: no atomics, the result does not depend on the thread count.
// Extra memory: (H, T) row dots plus two tile x tile buffers per thread.
void attention_backward(const AttentionSpec& spec, int64_t layer, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const float* dout,
                        int64_t T, float* dq, float* dk, float* dv, int64_t tile = kAttnTile);


// One decode step of the window policy at position `pos` (already stored in the cache).
// q: (H, D)  out: (H, D)
void attention_decode(const WindowCache& cache, int64_t layer, const float* q, int64_t pos,
                      float* out);

}  // namespace moa
