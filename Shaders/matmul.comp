// matmul: C[b] = op(A[b]) @ op(B[b]) (+ bias[n]) (+ addend[b]) for b < batchCount; f32 accumulation.
//
// Shapes (contiguous, row-major, element strides): A [M, K] ([K, M] if TRANSPOSE_A), B [K, N] ([N, K] if
//   TRANSPOSE_B), bias [N] (read only when hasBias != 0), addend [M, N] laid out as C (a fused residual add,
//   read only when hasAddend != 0), C [M, N]. Batch b starts at b * batchStrideX
//   elements; batchStrideB = 0 shares one B across the batch. All indices are 32-bit (< 2^32 elements).
//
// Variant defines:
//   KILN_F16            0/1  storage type (common.glsl); arithmetic is always f32.
//   TRANSPOSE_A         0/1  A stored [K, M].          TRANSPOSE_B 0/1  B stored [N, K] (torch Linear weight).
//   SHARED_MEMORY_TILES 0/1  1 = shared-memory tiled path for discrete GPUs (64x64x16 tiles, 4x4 per thread,
//                            2 barriers per 16-deep K step). 0 = register-blocked path for CPU Vulkan (lavapipe).
//   Register path only:
//   SUBGROUP_SIZE       must equal the device subgroup size (8 on lavapipe/AVX2; default 8). A rows are fetched
//                       one per lane and shared with subgroupBroadcast, so the workgroup size must be a
//                       multiple of SUBGROUP_SIZE and the subgroup size must be fixed (it is on lavapipe).
//   TILE_M              rows of C per workgroup, multiple of SUBGROUP_SIZE (default 24; best on lavapipe).
//   TILE_N              columns of C per invocation, multiple of 4 (default 12; best on lavapipe).
//   VECTOR_K            0/1  1 = four k per loop step with A rows (and, with TRANSPOSE_B, B columns) fetched by
//                            loadWide4. Needs !TRANSPOSE_A, K % 4 == 0, KILN_WIDE_LOADS and 8-byte aligned A (and B).
//   VECTOR_N            0/1  1 = B rows fetched four columns at a time by loadWide4. Needs !TRANSPOSE_B,
//                            N % 4 == 0, KILN_WIDE_LOADS and an 8-byte aligned B.
//   WIDE_STORE          0/1  1 = C rows written (and addend rows read) four columns at a time by storeWide4 /
//                            loadWide4. Needs N % 4 == 0, KILN_WIDE_LOADS and an 8-byte aligned C (and addend).
//                       All three exist because lavapipe turns every buffer load into a loop over the lanes:
//                       one 64-bit load instead of four scalar ones is a quarter of the loops (f16).
//   No shape restrictions in either path: every edge (M, N, K not multiples of anything) is guarded/clamped.
//
// Workgroup size:
//   SHARED_MEMORY_TILES=1: fixed 16 x 16 x 1 (specialization constants unused).
//   SHARED_MEMORY_TILES=0: local_size_x = specialization constant 0 (WG, a multiple of SUBGROUP_SIZE; 8 is
//                          best on lavapipe), y = z = 1 (constant 1 may be left unset).
//
// Dispatch (any smaller Y/Z count is also correct: Y and Z are grid-stride loops):
//   SHARED_MEMORY_TILES=1: X = min(ceil(N / 64), 65535), Y = min(ceil(M / 64), 65535), Z = min(batchCount, 65535)
//                          (X is a loop too).
//   SHARED_MEMORY_TILES=0: X = ceil(N / (WG * TILE_N)) (must be <= 65535), Y = min(ceil(M / TILE_M), 65535),
//                          Z = min(batchCount, 65535).
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require

#ifndef TRANSPOSE_A
#define TRANSPOSE_A 0
#endif
#ifndef TRANSPOSE_B
#define TRANSPOSE_B 0
#endif
#ifndef SHARED_MEMORY_TILES
#define SHARED_MEMORY_TILES 0
#endif
#ifndef TILE_M
#define TILE_M 24
#endif
#ifndef TILE_N
#define TILE_N 12
#endif
#define NV (TILE_N / 4)
#ifndef SUBGROUP_SIZE
#define SUBGROUP_SIZE 8
#endif
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#define AL (TILE_M / SUBGROUP_SIZE)
#ifndef VECTOR_K
#define VECTOR_K 0
#endif
#ifndef VECTOR_N
#define VECTOR_N 0
#endif
#ifndef WIDE_STORE
#define WIDE_STORE 0
#endif


#if SHARED_MEMORY_TILES
// ---- Shared-memory tiled path (discrete GPUs): 64x64 output tile per 16x16 workgroup, 4x4 per thread.
#define SM_BM 64
#define SM_BN 64
#define SM_BK 16
layout(local_size_x = 16, local_size_y = 16, local_size_z = 1) in;
layout(push_constant) uniform Parameters {
    uvec2 a; uvec2 b; uvec2 bias; uvec2 c;
    uint M; uint N; uint K; uint batchCount;
    uint batchStrideA; uint batchStrideB; uint batchStrideC; uint hasBias;
    uvec2 addend; uint hasAddend;
} p;
shared float As[SM_BK][SM_BM + 4];
shared float Bs[SM_BK][SM_BN + 4];

void main() {
    TensorBuffer A = TensorBuffer(p.a);
    TensorBuffer B = TensorBuffer(p.b);
    TensorBuffer C = TensorBuffer(p.c);
    const uint M = p.M, N = p.N, K = p.K;
    const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y, tid = ty * 16 + tx;
    uint colTiles = (N + SM_BN - 1) / SM_BN, rowTiles = (M + SM_BM - 1) / SM_BM;
    for (uint batch = gl_WorkGroupID.z; batch < p.batchCount; batch += gl_NumWorkGroups.z) {
    for (uint mt = gl_WorkGroupID.y; mt < rowTiles; mt += gl_NumWorkGroups.y) {
    for (uint nt = gl_WorkGroupID.x; nt < colTiles; nt += gl_NumWorkGroups.x) {
        uint m0 = mt * SM_BM, n0 = nt * SM_BN;
        uint aBase = batch * p.batchStrideA, bBase = batch * p.batchStrideB, cBase = batch * p.batchStrideC;
        float acc[4][4];
        [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] = 0.0;
        for (uint k0 = 0; k0 < K; k0 += SM_BK) {
            // each thread stages 4 elements of the A tile and 4 of the B tile (bounds-checked, zero filled)
            [[unroll]] for (int e = 0; e < 4; e++) {
                uint idx = tid + uint(e) * 256u;
#if TRANSPOSE_A
                uint kk = idx / SM_BM, mm = idx % SM_BM;            // A is [K, M]: coalesced along m
#else
                uint mm = idx / SM_BK, kk = idx % SM_BK;            // A is [M, K]: coalesced along k
#endif
                uint gm = m0 + mm, gk = k0 + kk;
#if TRANSPOSE_A
                As[kk][mm] = (gm < M && gk < K) ? LOAD(A, aBase + gk * M + gm) : 0.0;
#else
                As[kk][mm] = (gm < M && gk < K) ? LOAD(A, aBase + gm * K + gk) : 0.0;
#endif
#if TRANSPOSE_B
                uint nn = idx / SM_BK, kb = idx % SM_BK;            // B is [N, K]
#else
                uint kb = idx / SM_BN, nn = idx % SM_BN;            // B is [K, N]
#endif
                uint gn = n0 + nn, gkb = k0 + kb;
#if TRANSPOSE_B
                Bs[kb][nn] = (gn < N && gkb < K) ? LOAD(B, bBase + gn * K + gkb) : 0.0;
#else
                Bs[kb][nn] = (gn < N && gkb < K) ? LOAD(B, bBase + gkb * N + gn) : 0.0;
#endif
            }
            barrier();
            [[unroll]] for (int kk = 0; kk < SM_BK; kk++) {
                float av[4], bv[4];
                [[unroll]] for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
                [[unroll]] for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
                [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
            }
            barrier();
        }
        [[unroll]] for (int i = 0; i < 4; i++) {
            uint gm = m0 + ty + 16 * i;
            [[unroll]] for (int j = 0; j < 4; j++) {
                uint gn = n0 + tx + 16 * j;
                if (gm < M && gn < N) {
                    float v = acc[i][j];
                    if (p.hasBias != 0) v += LOAD(TensorBuffer(p.bias), gn);
                    if (p.hasAddend != 0) v += LOAD(TensorBuffer(p.addend), cBase + gm * N + gn);
                    STORE(C, cBase + gm * N + gn, v);
                }
            }
        }
    }
    }
    }
}
#else
// ---- Register-blocked path (CPU Vulkan such as lavapipe; any GPU works but this is tuned for SIMD CPUs).
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(push_constant) uniform Parameters {
    uvec2 a; uvec2 b; uvec2 bias; uvec2 c;
    uint M; uint N; uint K; uint batchCount;
    uint batchStrideA; uint batchStrideB; uint batchStrideC; uint hasBias;
    uvec2 addend; uint hasAddend;
} p;

// Row k of B at this lane's columns 4q..4q+3 (n0 is the lane's first column).
vec4 loadRowOfB(uint bBase, uint k, int q) {
    TensorBuffer B = TensorBuffer(p.b);
    const uint N = p.N, K = p.K;
    uint n0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TILE_N + 4 * q;
#if TRANSPOSE_B
    uvec4 n = min(uvec4(n0) + uvec4(0, 1, 2, 3), uvec4(N - 1));
    return vec4(LOAD(B, bBase + n.x * K + k), LOAD(B, bBase + n.y * K + k), LOAD(B, bBase + n.z * K + k), LOAD(B, bBase + n.w * K + k));
#elif VECTOR_N
    return loadWide4(p.b, (bBase + k * N) / 4 + min(n0, N - 4) / 4);
#else
    uvec4 n = bBase + k * N + min(uvec4(n0) + uvec4(0, 1, 2, 3), uvec4(N - 1));
    return vec4(LOAD(B, n.x), LOAD(B, n.y), LOAD(B, n.z), LOAD(B, n.w));
#endif
}

void main() {
    TensorBuffer A = TensorBuffer(p.a);
    TensorBuffer C = TensorBuffer(p.c);
    const uint M = p.M, N = p.N, K = p.K;
    uint n0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TILE_N;
    uint rowTiles = (M + TILE_M - 1) / TILE_M;
    for (uint batch = gl_WorkGroupID.z; batch < p.batchCount; batch += gl_NumWorkGroups.z) {
    for (uint mt = gl_WorkGroupID.y; mt < rowTiles; mt += gl_NumWorkGroups.y) {
        uint m0 = mt * TILE_M;
        uint aBase = batch * p.batchStrideA;
        uint bBase = batch * p.batchStrideB;
        uint cBase = batch * p.batchStrideC;
        uint mrL[AL];   // the A rows this lane fetches; every lane gets all TILE_M rows by subgroupBroadcast
        [[unroll]] for (int g = 0; g < AL; g++) mrL[g] = min(m0 + g * SUBGROUP_SIZE + gl_SubgroupInvocationID, M - 1);
        uint nc[TILE_N];
        [[unroll]] for (int j = 0; j < TILE_N; j++) nc[j] = min(n0 + j, N - 1);
        vec4 acc[TILE_M][NV];
        [[unroll]] for (int r = 0; r < TILE_M; r++) [[unroll]] for (int q = 0; q < NV; q++) acc[r][q] = vec4(0.0);
#if VECTOR_K
        // Four k per step: A rows (and B columns when TRANSPOSE_B) come in as one wide load each, and
        // every accumulator is written once per four multiply-adds instead of once per one.
        const uint K4 = K / 4;
        for (uint k4 = 0; k4 < K4; k4++) {
            vec4 aL[AL];
            [[unroll]] for (int g = 0; g < AL; g++) aL[g] = loadWide4(p.a, (aBase + mrL[g] * K) / 4 + k4);
#if TRANSPOSE_B
            vec4 bk[TILE_N];   // column j's B[k..k+3]
            [[unroll]] for (int j = 0; j < TILE_N; j++) bk[j] = loadWide4(p.b, (bBase + nc[j] * K) / 4 + k4);
            [[unroll]] for (int r = 0; r < TILE_M; r++) {
                vec4 av = subgroupBroadcast(aL[r / SUBGROUP_SIZE], r % SUBGROUP_SIZE);
                [[unroll]] for (int q = 0; q < NV; q++)
                    acc[r][q] += vec4(dot(av, bk[4*q]), dot(av, bk[4*q+1]), dot(av, bk[4*q+2]), dot(av, bk[4*q+3]));
            }
#else
            vec4 bv[4][NV];    // rows k..k+3 of B at this lane's columns
            [[unroll]] for (int u = 0; u < 4; u++) [[unroll]] for (int q = 0; q < NV; q++) bv[u][q] = loadRowOfB(bBase, 4 * k4 + u, q);
            [[unroll]] for (int r = 0; r < TILE_M; r++) {
                vec4 av = subgroupBroadcast(aL[r / SUBGROUP_SIZE], r % SUBGROUP_SIZE);
                [[unroll]] for (int q = 0; q < NV; q++) acc[r][q] += av.x * bv[0][q] + av.y * bv[1][q] + av.z * bv[2][q] + av.w * bv[3][q];
            }
#endif
        }
#else
        for (uint k = 0; k < K; k++) {
            vec4 bv[NV];
            [[unroll]] for (int q = 0; q < NV; q++) bv[q] = loadRowOfB(bBase, k, q);
            float aL[AL];
            [[unroll]] for (int g = 0; g < AL; g++) {
#if TRANSPOSE_A
                aL[g] = LOAD(A, aBase + k * M + mrL[g]);
#else
                aL[g] = LOAD(A, aBase + mrL[g] * K + k);
#endif
            }
            [[unroll]] for (int r = 0; r < TILE_M; r++) {
                float av = subgroupBroadcast(aL[r / SUBGROUP_SIZE], r % SUBGROUP_SIZE);
                [[unroll]] for (int q = 0; q < NV; q++) acc[r][q] += av * bv[q];
            }
        }
#endif
        vec4 biasColumns[NV];   // fetched once per tile, not once per row
        [[unroll]] for (int q = 0; q < NV; q++) {
            biasColumns[q] = vec4(0.0);
            if (p.hasBias != 0) [[unroll]] for (int e = 0; e < 4; e++) biasColumns[q][e] = LOAD(TensorBuffer(p.bias), nc[4 * q + e]);
        }
        [[unroll]] for (int r = 0; r < TILE_M; r++) {
            if (m0 + r >= M) break;
            [[unroll]] for (int q = 0; q < NV; q++) {
                vec4 v = acc[r][q] + biasColumns[q];
                uint rowStart = cBase + (m0 + r) * N + n0;
#if WIDE_STORE
                if (n0 + 4 * q < N) {
                    if (p.hasAddend != 0) v += loadWide4(p.addend, rowStart / 4 + q);
                    storeWide4(p.c, rowStart / 4 + q, v);
                }
#else
                [[unroll]] for (int e = 0; e < 4; e++) {
                    if (n0 + 4 * q + e >= N) continue;
                    float addend = p.hasAddend != 0 ? LOAD(TensorBuffer(p.addend), rowStart + 4 * q + e) : 0.0;
                    STORE(C, rowStart + 4 * q + e, v[e] + addend);
                }
#endif
            }
        }
    }
    }
}
#endif
