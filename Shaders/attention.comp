// attention: O = softmax(scale * Q K^T [+ bias] [+ causal mask]) V, multi-head, self or cross, f32 online softmax.
//   Computed key-tile by key-tile (flash-attention style): no Lq x Lk score matrix is ever stored.
//
// Shapes (contiguous): q [batchHeads, queryLength, headDim], k [batchHeads, keyLength, headDim],
//   v [batchHeads, keyLength, valueDim], o [batchHeads, queryLength, valueDim]. scale is applied to Q.K
//   (pass 1/sqrt(headDim) for SDPA). causal != 0: top-left aligned like torch, query i sees keys j <= i
//   (a query with no visible key, i.e. keyLength == 0, writes zeros).
//   HAS_BIAS: bias [biasHeads, queryLength, keyLength] is added to the scaled scores (T5's relative position
//   bias); batch-head bh reads bias head bh % biasHeads, so biasHeads = H shares one bias across the batch.
//   TOKEN_MAJOR: q [B, queryLength, heads * headDim], k and v [B, keyLength, heads * dim], o likewise, as linear
//   layers produce and consume them (batch-head bh = b * heads + h is a column block of every row), so no
//   head split/merge permutes are needed around the kernel.
//
// Variant defines:
//   KILN_F16            0/1  storage type (common.glsl); arithmetic is always f32.
//   HAS_BIAS            0/1  additive bias input; adds `bias` after `o` and `biasHeads` after `causal` to the
//                       push constants (default 0: the plain kernel, untouched).
//   TOKEN_MAJOR         0/1  the layout above; adds `heads` as the last push constant (default 0).
//   CAUSAL              0/1  must be 1 when causal != 0: keys a query cannot see then add nothing to its output
//                       rather than weight 0 times their value (NaN for an infinite value). Default 0.
//   MAX_VALUE_DIM       >= valueDim. Register path: use valueDim rounded up to a multiple of SUBGROUP_SIZE
//                       (e.g. 40, 64, 80, 128) -- the accumulator is MAX_VALUE_DIM / SUBGROUP_SIZE per lane and
//                       larger values waste work. Default 128. headDim is unrestricted in the register path.
//   SHARED_MEMORY_TILES 0/1  1 = shared-memory path for discrete GPUs, 0 = register path for lavapipe.
//   Shared path only:
//   MAX_HEAD_DIM        >= headDim (default 128). Shared memory = 16 * (MAX_HEAD_DIM + MAX_VALUE_DIM) * 4 bytes.
//   Register path only:
//   SUBGROUP_SIZE       must equal the device subgroup size (default 8 = lavapipe). Lanes of a subgroup share
//                       a tile of queries; keys and value columns are spread over the lanes.
//   TILE_Q              queries per subgroup, multiple of SUBGROUP_SIZE (default 16).
//   KEYS_PER_LANE       keys per lane per key block (block = KEYS_PER_LANE * SUBGROUP_SIZE keys; default 4).
//   VECTOR_D            0/1  Q.K four head dims per step through loadWide4. Needs KILN_WIDE_LOADS,
//                       headDim % 4 == 0 and 8-byte aligned q and k.
//
// Workgroup size:
//   SHARED_MEMORY_TILES=1: fixed 64 x 1 x 1 (one query row per invocation).
//   SHARED_MEMORY_TILES=0: local_size_x = specialization constant 0 (WG, a multiple of SUBGROUP_SIZE; each
//                          subgroup owns its own TILE_Q queries; 8 is best on lavapipe), y = z = 1.
//
// Dispatch (smaller Y counts are also correct: grid-stride loop over batchHeads):
//   SHARED_MEMORY_TILES=1: X = min(ceil(queryLength / 64), 65535) (loops), Y = min(batchHeads, 65535), Z = 1.
//   SHARED_MEMORY_TILES=0: X = ceil(queryLength / (TILE_Q * WG / SUBGROUP_SIZE)) (must be <= 65535),
//                          Y = min(batchHeads, 65535), Z = 1.
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_arithmetic : require

#ifndef HAS_BIAS
#define HAS_BIAS 0
#endif
#ifndef TOKEN_MAJOR
#define TOKEN_MAJOR 0
#endif
#ifndef SHARED_MEMORY_TILES
#define SHARED_MEMORY_TILES 0
#endif
#ifndef CAUSAL
#define CAUSAL 0
#endif
#ifndef SUBGROUP_SIZE
#define SUBGROUP_SIZE 8
#endif
#ifndef TILE_Q
#define TILE_Q 16
#endif
#ifndef VECTOR_D
#define VECTOR_D 0
#endif
#ifndef KEYS_PER_LANE
#define KEYS_PER_LANE 4
#endif
#ifndef MAX_VALUE_DIM
#define MAX_VALUE_DIM 128
#endif
#define QL (TILE_Q / SUBGROUP_SIZE)
#define DPL ((MAX_VALUE_DIM + SUBGROUP_SIZE - 1) / SUBGROUP_SIZE)
#define TK KEYS_PER_LANE
#define KEY_BLOCK (TK * SUBGROUP_SIZE)

const float NEG_INF = -1.0 / 0.0;

layout(push_constant) uniform Parameters {
    uvec2 q; uvec2 k; uvec2 v; uvec2 o;
#if HAS_BIAS
    uvec2 bias;
#endif
    uint batchHeads; uint queryLength; uint keyLength; uint headDim; uint valueDim; float scale; uint causal;
#if HAS_BIAS
    uint biasHeads;
#endif
#if TOKEN_MAJOR
    uint heads;
#endif
} p;

// Where batch-head bh's rows of a [.., length, width] tensor start, and how far apart they are.
#if TOKEN_MAJOR
#define HEAD_BASE(bh, length, width) (((bh) / p.heads) * (length) * p.heads * (width) + ((bh) % p.heads) * (width))
#define ROW_STRIDE(width) (p.heads * (width))
#else
#define HEAD_BASE(bh, length, width) ((bh) * (length) * (width))
#define ROW_STRIDE(width) (width)
#endif

#if SHARED_MEMORY_TILES
// ---- Shared-memory path (discrete GPUs): one query row per invocation, 64 rows per workgroup; key/value
// tiles of SM_KEYS rows are staged in shared memory; q and the output row live in registers.
#ifndef MAX_HEAD_DIM
#define MAX_HEAD_DIM 128
#endif
#define SM_ROWS 64
#define SM_KEYS 16
layout(local_size_x = SM_ROWS, local_size_y = 1, local_size_z = 1) in;

shared float Ks[SM_KEYS][MAX_HEAD_DIM];
shared float Vs[SM_KEYS][MAX_VALUE_DIM];

void main() {
    TensorBuffer Q = TensorBuffer(p.q);
    TensorBuffer Kb = TensorBuffer(p.k);
    TensorBuffer V = TensorBuffer(p.v);
    TensorBuffer Ob = TensorBuffer(p.o);
    const uint Lq = p.queryLength, Lk = p.keyLength, D = p.headDim, Dv = p.valueDim;
    const uint tid = gl_LocalInvocationID.x;
    const uint rowTiles = (Lq + SM_ROWS - 1) / SM_ROWS;
    for (uint bh = gl_WorkGroupID.y; bh < p.batchHeads; bh += gl_NumWorkGroups.y) {
    for (uint rt = gl_WorkGroupID.x; rt < rowTiles; rt += gl_NumWorkGroups.x) {
        uint i0 = rt * SM_ROWS, i = i0 + tid;
        uint qRow = HEAD_BASE(bh, Lq, D) + min(i, Lq - 1) * ROW_STRIDE(D);
        float qv[MAX_HEAD_DIM], acc[MAX_VALUE_DIM];
        [[unroll]] for (uint d = 0; d < MAX_HEAD_DIM; d++) qv[d] = d < D ? LOAD(Q, qRow + d) * p.scale : 0.0;
        [[unroll]] for (uint d = 0; d < MAX_VALUE_DIM; d++) acc[d] = 0.0;
        float m = NEG_INF, l = 0.0;
        uint kEnd = p.causal != 0 ? min(Lk, i0 + SM_ROWS) : Lk;
#if HAS_BIAS
        TensorBuffer Bias = TensorBuffer(p.bias);
        uint biasRow = ((bh % p.biasHeads) * Lq + min(i, Lq - 1)) * Lk;
#endif
        for (uint kb = 0; kb < kEnd; kb += SM_KEYS) {
            for (uint e = tid; e < SM_KEYS * MAX_HEAD_DIM; e += SM_ROWS) {
                uint j = e / MAX_HEAD_DIM, d = e % MAX_HEAD_DIM;
                Ks[j][d] = (kb + j < Lk && d < D) ? LOAD(Kb, HEAD_BASE(bh, Lk, D) + (kb + j) * ROW_STRIDE(D) + d) : 0.0;
            }
            for (uint e = tid; e < SM_KEYS * MAX_VALUE_DIM; e += SM_ROWS) {
                uint j = e / MAX_VALUE_DIM, d = e % MAX_VALUE_DIM;
                Vs[j][d] = (kb + j < Lk && d < Dv) ? LOAD(V, HEAD_BASE(bh, Lk, Dv) + (kb + j) * ROW_STRIDE(Dv) + d) : 0.0;
            }
            barrier();
            float sc[SM_KEYS];
            float mx = NEG_INF;
            [[unroll]] for (uint j = 0; j < SM_KEYS; j++) {
                float dot = 0.0;
                [[unroll]] for (uint d = 0; d < MAX_HEAD_DIM; d++) dot += qv[d] * Ks[j][d];
                uint key = kb + j;
                bool visible = key < Lk && (p.causal == 0 || key <= i);
#if HAS_BIAS
                if (visible) dot += LOAD(Bias, biasRow + key);
#endif
                sc[j] = visible ? dot : NEG_INF;
                mx = max(mx, sc[j]);
            }
            float mNew = max(m, mx);
            float mSafe = mNew == NEG_INF ? 0.0 : mNew;
            float alpha = exp(m - mSafe);
            l *= alpha;
            [[unroll]] for (uint d = 0; d < MAX_VALUE_DIM; d++) acc[d] *= alpha;
            [[unroll]] for (uint j = 0; j < SM_KEYS; j++) {
                float pj = exp(sc[j] - mSafe);
                l += pj;
#if CAUSAL
                // A hidden key's value takes no part (0 * inf would be NaN); keys past the end are zeros in Vs.
                if (kb + j <= i) [[unroll]] for (uint d = 0; d < MAX_VALUE_DIM; d++) acc[d] += pj * Vs[j][d];
#else
                [[unroll]] for (uint d = 0; d < MAX_VALUE_DIM; d++) acc[d] += pj * Vs[j][d];
#endif
            }
            m = mNew;
            barrier();
        }
        if (i < Lq) {
            float inv = l > 0.0 ? 1.0 / l : 0.0;
            uint oRow = HEAD_BASE(bh, Lq, Dv) + i * ROW_STRIDE(Dv);
            [[unroll]] for (uint d = 0; d < MAX_VALUE_DIM; d++) if (d < Dv) STORE(Ob, oRow + d, acc[d] * inv);
        }
    }
    }
}
#else
// ---- Register-blocked path (CPU Vulkan such as lavapipe).
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;





void main() {
    TensorBuffer Q = TensorBuffer(p.q);
    TensorBuffer Kb = TensorBuffer(p.k);
    TensorBuffer V = TensorBuffer(p.v);
    TensorBuffer Ob = TensorBuffer(p.o);
    const uint Lq = p.queryLength, Lk = p.keyLength, D = p.headDim, Dv = p.valueDim;
    const uint lane = gl_SubgroupInvocationID;
    uint qTile = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
    uint i0 = qTile * TILE_Q;
    if (i0 >= Lq) return;
    uint col[DPL];
    [[unroll]] for (int c = 0; c < DPL; c++) col[c] = min(uint(c * SUBGROUP_SIZE) + lane, Dv - 1);
    for (uint bh = gl_WorkGroupID.y; bh < p.batchHeads; bh += gl_NumWorkGroups.y) {
        uint qBase = HEAD_BASE(bh, Lq, D), kBase = HEAD_BASE(bh, Lk, D), vBase = HEAD_BASE(bh, Lk, Dv);
        uint qRow[QL];
        [[unroll]] for (int g = 0; g < QL; g++) qRow[g] = qBase + min(i0 + g * SUBGROUP_SIZE + lane, Lq - 1) * ROW_STRIDE(D);
        float m[TILE_Q], l[TILE_Q], acc[TILE_Q][DPL];
        [[unroll]] for (int r = 0; r < TILE_Q; r++) {
            m[r] = NEG_INF; l[r] = 0.0;
            [[unroll]] for (int c = 0; c < DPL; c++) acc[r][c] = 0.0;
        }
        uint kEnd = p.causal != 0 ? min(Lk, i0 + TILE_Q) : Lk;
#if HAS_BIAS
        TensorBuffer Bias = TensorBuffer(p.bias);
        uint biasBase = (bh % p.biasHeads) * Lq * Lk;
#endif
        for (uint kb = 0; kb < kEnd; kb += KEY_BLOCK) {
            uint kRow[TK];
            [[unroll]] for (int t = 0; t < TK; t++) kRow[t] = kBase + min(kb + t * SUBGROUP_SIZE + lane, Lk - 1) * ROW_STRIDE(D);
            float s[TILE_Q][TK];
            [[unroll]] for (int r = 0; r < TILE_Q; r++) [[unroll]] for (int t = 0; t < TK; t++) s[r][t] = 0.0;
#if VECTOR_D
            // Four head dims per step: one 64-bit load per row instead of four per-lane load loops,
            // and each score updated once per four multiply-adds.
            for (uint d4 = 0; d4 < D / 4; d4++) {
                vec4 qL[QL], kv[TK];
                [[unroll]] for (int g = 0; g < QL; g++) qL[g] = loadWide4(p.q, qRow[g] / 4 + d4);
                [[unroll]] for (int t = 0; t < TK; t++) kv[t] = loadWide4(p.k, kRow[t] / 4 + d4);
                [[unroll]] for (int r = 0; r < TILE_Q; r++) {
                    vec4 qv = subgroupBroadcast(qL[r / SUBGROUP_SIZE], r % SUBGROUP_SIZE);
                    [[unroll]] for (int t = 0; t < TK; t++) s[r][t] += dot(qv, kv[t]);
                }
            }
#else
            for (uint d = 0; d < D; d++) {
                float qL[QL], kv[TK];
                [[unroll]] for (int g = 0; g < QL; g++) qL[g] = LOAD(Q, qRow[g] + d);
                [[unroll]] for (int t = 0; t < TK; t++) kv[t] = LOAD(Kb, kRow[t] + d);
                [[unroll]] for (int r = 0; r < TILE_Q; r++) {
                    float qv = subgroupBroadcast(qL[r / SUBGROUP_SIZE], r % SUBGROUP_SIZE);
                    [[unroll]] for (int t = 0; t < TK; t++) s[r][t] += qv * kv[t];
                }
            }
#endif
            // mask, online softmax
            [[unroll]] for (int r = 0; r < TILE_Q; r++) {
                float mx = NEG_INF;
                [[unroll]] for (int t = 0; t < TK; t++) {
                    uint key = kb + t * SUBGROUP_SIZE + lane;
                    bool visible = key < Lk && (p.causal == 0 || key <= i0 + r);
#if HAS_BIAS
                    // rows past Lq are computed but never stored; clamp so their loads stay in bounds
                    float added = visible ? LOAD(Bias, biasBase + min(i0 + r, Lq - 1) * Lk + key) : 0.0;
                    s[r][t] = visible ? s[r][t] * p.scale + added : NEG_INF;
#else
                    s[r][t] = visible ? s[r][t] * p.scale : NEG_INF;
#endif
                    mx = max(mx, s[r][t]);
                }
                float mNew = max(m[r], subgroupMax(mx));
                float mSafe = mNew == NEG_INF ? 0.0 : mNew;
                float alpha = exp(m[r] - mSafe);
                float sum = 0.0;
                [[unroll]] for (int t = 0; t < TK; t++) { s[r][t] = exp(s[r][t] - mSafe); sum += s[r][t]; }
                l[r] = l[r] * alpha + subgroupAdd(sum);
                m[r] = mNew;
                [[unroll]] for (int c = 0; c < DPL; c++) acc[r][c] *= alpha;
            }
            // O += P V. Keys a query cannot see have P == 0, but their values must not enter (0 * inf is NaN):
            // keys past the end read zeros (one test per key, the same for every lane), and with CAUSAL the
            // keys after a query add nothing to its row.
            [[unroll]] for (int t = 0; t < TK; t++) {
                [[unroll]] for (int src = 0; src < SUBGROUP_SIZE; src++) {
                    uint key = kb + uint(t * SUBGROUP_SIZE + src);
                    // clamp the row so the load stays in bounds
                    uint vRow = vBase + min(key, Lk - 1) * ROW_STRIDE(Dv);
                    float vv[DPL];
                    [[unroll]] for (int c = 0; c < DPL; c++) { float value = LOAD(V, vRow + col[c]); vv[c] = key < Lk ? value : 0.0; }
                    [[unroll]] for (int r = 0; r < TILE_Q; r++) {
                        float pr = subgroupBroadcast(s[r][t], src);
#if CAUSAL
                        bool seen = key <= i0 + r;
                        [[unroll]] for (int c = 0; c < DPL; c++) acc[r][c] += seen ? pr * vv[c] : 0.0;
#else
                        [[unroll]] for (int c = 0; c < DPL; c++) acc[r][c] += pr * vv[c];
#endif
                    }
                }
            }
        }
        uint oBase = HEAD_BASE(bh, Lq, Dv);
        [[unroll]] for (int r = 0; r < TILE_Q; r++) {
            uint i = i0 + r;
            if (i >= Lq) break;
            float inv = l[r] > 0.0 ? 1.0 / l[r] : 0.0;
            [[unroll]] for (int c = 0; c < DPL; c++) {
                uint cc = uint(c * SUBGROUP_SIZE) + lane;
                if (cc < Dv) STORE(Ob, oBase + i * ROW_STRIDE(Dv) + cc, acc[r][c] * inv);
            }
        }
    }
}
#endif
