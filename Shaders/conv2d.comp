// conv2d: direct implicit-GEMM 2D convolution, NCHW, any kernel size / stride / padding, optional bias and addend (a fused residual add).
//   No im2col buffer: input pixels are fetched straight from the input tensor (padding reads as zero).
//
// Shapes (contiguous): input [batch, inChannels, inHeight, inWidth], weight [outChannels, inChannels,
//   kernelHeight, kernelWidth], bias [outChannels] (read only when hasBias != 0), addend (read only when hasAddend != 0)
//   [batch, outChannels, outHeight, outWidth] or [batch, outChannels, 1, 1], summed with the result in f32,
//   output [batch, outChannels, outHeight, outWidth], outHeight = (inHeight + 2 padY - kernelHeight) / strideY + 1
//   (the caller computes outHeight/outWidth; any values consistent with the padding are fine). Dilation 1, groups 1.
//   GEMM view: rows = output channels (O), columns = output pixels (outHeight*outWidth), depth = C*kh*kw.
//
// Variant defines:
//   KILN_F16            0/1  storage type (common.glsl); arithmetic is always f32.
//   SHARED_MEMORY_TILES 0/1  1 = shared-memory tiled path for discrete GPUs (64 channels x 64 pixels x 16 deep,
//                            4x4 per thread). 0 = register-blocked path for CPU Vulkan (lavapipe).
//   Register path only:
//   SUBGROUP_SIZE       must equal the device subgroup size (default 8 = lavapipe); weights are fetched one row
//                       per lane and shared with subgroupBroadcast (workgroup size a multiple of it).
//   TILE_M              output channels per workgroup, multiple of SUBGROUP_SIZE, at most 8 * SUBGROUP_SIZE
//                       (default 24): lavapipe computed wrong results with 10 or more row groups per lane.
//   TILE_N              output columns (pixels of the batch taken together) per invocation (default 12; any value >= 1).
//                       The dispatch picks TILE_M/TILE_N from the output size and channel counts.
//   ROW_WINDOW          0/1  1 = a lane's TILE_N columns are LANE_ROWS output rows of SEGMENT pixels; per tap row
//                            and channel each row segment is read once (SEGMENT / 4 loadWide4 plus the KW - 1 pixels
//                            beside it) and all KW taps are taken from it. Needs KILN_WIDE_LOADS, kernelWidth == KW
//                            (1 or 3), strideX 1, padX == KW / 2, outWidth == inWidth, inWidth % 4 == 0, SEGMENT % 4
//                            == 0, outWidth % SEGMENT == 0, LANE_ROWS == 1 unless SEGMENT == outWidth, outHeight %
//                            LANE_ROWS == 0, and an 8-byte aligned input.
//   KW, SEGMENT         for ROW_WINDOW (defaults 3 and TILE_N); LANE_ROWS = TILE_N / SEGMENT.
//   No other shape restrictions: every edge is guarded/clamped.
//
// Workgroup size:
//   SHARED_MEMORY_TILES=1: fixed 16 x 16 x 1.
//   SHARED_MEMORY_TILES=0: local_size_x = specialization constant 0 (WG, multiple of SUBGROUP_SIZE; 8 best on
//                          lavapipe), y = z = 1.
//
// Dispatch (smaller Y/Z counts are also correct: grid-stride loops):
//   SHARED_MEMORY_TILES=1: X = min(ceil(outHeight*outWidth / 64), 65535) (loops), Y = min(ceil(outChannels / 64), 65535),
//                          Z = min(batch, 65535).
//   SHARED_MEMORY_TILES=0: X = ceil(batch*outHeight*outWidth / (WG * TILE_N)) (must be <= 65535),
//                          Y = min(ceil(outChannels / TILE_M), 65535), Z = 1.
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require

#ifndef SHARED_MEMORY_TILES
#define SHARED_MEMORY_TILES 0
#endif
#ifndef TILE_M
#define TILE_M 24
#endif
#ifndef TILE_N
#define TILE_N 12
#endif
#ifndef SUBGROUP_SIZE
#define SUBGROUP_SIZE 8
#endif
#define AL (TILE_M / SUBGROUP_SIZE)
#ifndef ROW_WINDOW
#define ROW_WINDOW 0
#endif
#ifndef KW
#define KW 3
#endif
#define PAD_X (KW / 2)
#ifndef SEGMENT
#define SEGMENT TILE_N
#endif
#define LANE_ROWS (TILE_N / SEGMENT)
// The fused addend at output (image b, channel o, pixel pos): a residual (addendPlane = outHeight*outWidth,
// addendPixel = 1) or a per-image channel bias (addendPlane = 1, addendPixel = 0).
#define addendAt(b, o, pos) (p.hasAddend != 0 ? LOAD(TensorBuffer(p.addend), ((b) * p.outChannels + (o)) * p.addendPlane + (pos) * p.addendPixel) : 0.0)

#if SHARED_MEMORY_TILES
// ---- Shared-memory tiled implicit GEMM (discrete GPUs): 64 output channels x 64 output pixels per
// 16x16 workgroup, 4x4 per thread; the input patch is gathered straight into shared memory (no im2col buffer).
#define SM_BM 64
#define SM_BN 64
#define SM_BK 16
layout(local_size_x = 16, local_size_y = 16, local_size_z = 1) in;
layout(push_constant) uniform Parameters {
    uvec2 input_; uvec2 weight; uvec2 bias; uvec2 output_;
    uint batch; uint inChannels; uint inHeight; uint inWidth;
    uint outChannels; uint outHeight; uint outWidth;
    uint kernelHeight; uint kernelWidth; uint strideY; uint strideX; uint padY; uint padX; uint hasBias;
    uvec2 addend; uint addendPlane; uint addendPixel; uint hasAddend;
} p;
shared float As[SM_BK][SM_BM + 4];
shared float Bs[SM_BK][SM_BN + 4];

void main() {
    TensorBuffer X = TensorBuffer(p.input_);
    TensorBuffer W = TensorBuffer(p.weight);
    TensorBuffer Y = TensorBuffer(p.output_);
    const uint C = p.inChannels, H = p.inHeight, Wd = p.inWidth, O = p.outChannels;
    const uint OHW = p.outHeight * p.outWidth, HW = H * Wd;
    const uint KK = p.kernelHeight * p.kernelWidth, CKK = C * KK;
    const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y, tid = ty * 16 + tx;
    uint colTiles = (OHW + SM_BN - 1) / SM_BN, rowTiles = (O + SM_BM - 1) / SM_BM;
    for (uint b = gl_WorkGroupID.z; b < p.batch; b += gl_NumWorkGroups.z) {
    for (uint mt = gl_WorkGroupID.y; mt < rowTiles; mt += gl_NumWorkGroups.y) {
    for (uint nt = gl_WorkGroupID.x; nt < colTiles; nt += gl_NumWorkGroups.x) {
        uint m0 = mt * SM_BM, n0 = nt * SM_BN;
        uint xBase = b * C * HW;
        float acc[4][4];
        [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] = 0.0;
        for (uint k0 = 0; k0 < CKK; k0 += SM_BK) {
            [[unroll]] for (int e = 0; e < 4; e++) {
                uint idx = tid + uint(e) * 256u;
                uint mm = idx / SM_BK, kk = idx % SM_BK;
                uint go = m0 + mm, gk = k0 + kk;
                As[kk][mm] = (go < O && gk < CKK) ? LOAD(W, go * CKK + gk) : 0.0;
                uint kb = idx / SM_BN, nn = idx % SM_BN;
                uint pos = n0 + nn, gkb = k0 + kb;
                float xv = 0.0;
                if (pos < OHW && gkb < CKK) {
                    uint c = gkb / KK, rem = gkb - c * KK;
                    uint ky = rem / p.kernelWidth, kx = rem - ky * p.kernelWidth;
                    uint oy = pos / p.outWidth, ox = pos - oy * p.outWidth;
                    int iy = int(oy * p.strideY + ky) - int(p.padY), ix = int(ox * p.strideX + kx) - int(p.padX);
                    if (iy >= 0 && iy < int(H) && ix >= 0 && ix < int(Wd)) xv = LOAD(X, xBase + c * HW + uint(iy) * Wd + uint(ix));
                }
                Bs[kb][nn] = xv;
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
        uint yBase = b * O * OHW;
        [[unroll]] for (int i = 0; i < 4; i++) {
            uint o = m0 + ty + 16 * i;
            if (o >= O) continue;
            float bo = p.hasBias != 0 ? LOAD(TensorBuffer(p.bias), o) : 0.0;
            [[unroll]] for (int j = 0; j < 4; j++) {
                uint pos = n0 + tx + 16 * j;
                if (pos < OHW) STORE(Y, yBase + o * OHW + pos, acc[i][j] + bo + addendAt(b, o, pos));
            }
        }
    }
    }
    }
}
#else
// ---- Register-blocked path (CPU Vulkan such as lavapipe).
// Columns are output pixels of the whole batch (column = b * outHeight*outWidth + pixel): at the
// U-Net's deep levels (8x8, 4x4 latents) one image has too few pixels to fill a workgroup's lanes,
// the batch together does. Each lane owns TILE_N consecutive columns; a workgroup owns TILE_M
// output channels, whose weights are fetched one row per lane and shared by subgroupBroadcast.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(push_constant) uniform Parameters {
    uvec2 input_; uvec2 weight; uvec2 bias; uvec2 output_;
    uint batch; uint inChannels; uint inHeight; uint inWidth;
    uint outChannels; uint outHeight; uint outWidth;
    uint kernelHeight; uint kernelWidth; uint strideY; uint strideX; uint padY; uint padX; uint hasBias;
    uvec2 addend; uint addendPlane; uint addendPixel; uint hasAddend;
} p;

void main() {
    TensorBuffer X = TensorBuffer(p.input_);
    TensorBuffer W = TensorBuffer(p.weight);
    TensorBuffer Y = TensorBuffer(p.output_);
    const uint C = p.inChannels, H = p.inHeight, Wd = p.inWidth, O = p.outChannels;
    const uint OHW = p.outHeight * p.outWidth, HW = H * Wd, columns = p.batch * OHW;
    const uint KK = p.kernelHeight * p.kernelWidth, CKK = C * KK;
    uint n0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TILE_N;
    uint rowTiles = (O + TILE_M - 1) / TILE_M;
    // per-lane columns (clamped for loads; stores are guarded): image start and input corner
    uint xImage[TILE_N]; int iy0[TILE_N], ix0[TILE_N];
    [[unroll]] for (int j = 0; j < TILE_N; j++) {
        uint column = min(n0 + j, columns - 1);
        uint b = column / OHW, pos = column - b * OHW;
        uint oy = pos / p.outWidth, ox = pos - oy * p.outWidth;
        xImage[j] = b * C * HW;
        iy0[j] = int(oy * p.strideY) - int(p.padY);
        ix0[j] = int(ox * p.strideX) - int(p.padX);
    }
#if ROW_WINDOW
    // The lane's segments never straddle rows or images (see the define's conditions); lanes past the
    // end read the last segments (their stores are skipped).
    uint first = min(n0, columns - TILE_N);
    uint windowBatch = first / OHW, windowPos = first - windowBatch * OHW;
    uint windowOy = windowPos / p.outWidth, windowX = windowPos - windowOy * p.outWidth;
    uint windowImage = windowBatch * C * HW;
    // Padding is selected, never multiplied in: a clamped load times 0 would make NaN of an infinite pixel.
    uint leftIndex[PAD_X + 1], rightIndex[PAD_X + 1]; bool leftValid[PAD_X + 1], rightValid[PAD_X + 1];
    [[unroll]] for (int e = 0; e < PAD_X; e++) {
        int left = int(windowX) - PAD_X + e, right = int(windowX) + SEGMENT + e;
        leftValid[e] = left >= 0;
        rightValid[e] = right < int(Wd);
        leftIndex[e] = uint(max(left, 0));
        rightIndex[e] = uint(min(right, int(Wd) - 1));
    }
#endif
    for (uint mt = gl_WorkGroupID.y; mt < rowTiles; mt += gl_NumWorkGroups.y) {
        uint m0 = mt * TILE_M;
        uint wRow[AL];
        [[unroll]] for (int g = 0; g < AL; g++) wRow[g] = min(m0 + g * SUBGROUP_SIZE + gl_SubgroupInvocationID, O - 1) * CKK;
        float acc[TILE_M][TILE_N];
        [[unroll]] for (int r = 0; r < TILE_M; r++) [[unroll]] for (int j = 0; j < TILE_N; j++) acc[r][j] = 0.0;
#if ROW_WINDOW
        // Broadcast weights serve TILE_N columns each, so wide tiles (32 columns) cut the broadcasts per
        // multiply-add that bound the general loop below, and each input pixel is loaded once, not KW times.
        for (uint ky = 0; ky < p.kernelHeight; ky++) {
            bool rowValid[LANE_ROWS]; uint rowStart[LANE_ROWS];
            [[unroll]] for (int lr = 0; lr < LANE_ROWS; lr++) {
                int iy = int((windowOy + uint(lr)) * p.strideY + ky) - int(p.padY);
                rowValid[lr] = iy >= 0 && iy < int(H);
                rowStart[lr] = windowImage + uint(clamp(iy, 0, int(H) - 1)) * Wd + windowX;
            }
            for (uint c = 0; c < C; c++) {
                float xs[LANE_ROWS][SEGMENT + KW - 1];   // each row segment with its KW - 1 neighbours
                [[unroll]] for (int lr = 0; lr < LANE_ROWS; lr++) {
                    uint row = rowStart[lr] + c * HW;
                    [[unroll]] for (int i = 0; i < SEGMENT / 4; i++) {
                        vec4 loaded = loadWide4(p.input_, row / 4 + uint(i));
                        vec4 v = rowValid[lr] ? loaded : vec4(0.0);
                        [[unroll]] for (int e = 0; e < 4; e++) xs[lr][PAD_X + 4 * i + e] = v[e];
                    }
                    [[unroll]] for (int e = 0; e < PAD_X; e++) {
                        float left = LOAD(X, row - windowX + leftIndex[e]), right = LOAD(X, row - windowX + rightIndex[e]);
                        xs[lr][e] = leftValid[e] && rowValid[lr] ? left : 0.0;
                        xs[lr][PAD_X + SEGMENT + e] = rightValid[e] && rowValid[lr] ? right : 0.0;
                    }
                }
                float aL[KW][AL];
                [[unroll]] for (int kx = 0; kx < KW; kx++) [[unroll]] for (int g = 0; g < AL; g++) aL[kx][g] = LOAD(W, wRow[g] + (c * p.kernelHeight + ky) * KW + kx);
                [[unroll]] for (int r = 0; r < TILE_M; r++) {
                    float w[KW];
                    [[unroll]] for (int kx = 0; kx < KW; kx++) w[kx] = subgroupBroadcast(aL[kx][r / SUBGROUP_SIZE], r % SUBGROUP_SIZE);
                    [[unroll]] for (int lr = 0; lr < LANE_ROWS; lr++) [[unroll]] for (int j = 0; j < SEGMENT; j++) {
                        float sum = acc[r][lr * SEGMENT + j];
                        [[unroll]] for (int kx = 0; kx < KW; kx++) sum += w[kx] * xs[lr][j + kx];
                        acc[r][lr * SEGMENT + j] = sum;
                    }
                }
            }
        }
#else
        for (uint ky = 0; ky < p.kernelHeight; ky++) {
        for (uint kx = 0; kx < p.kernelWidth; kx++) {
            // Padded taps load the image's first pixel and select 0 instead (a multiply by 0 would make
            // NaN of an infinite pixel there).
            uint off[TILE_N]; bool valid[TILE_N];
            [[unroll]] for (int j = 0; j < TILE_N; j++) {
                int iy = iy0[j] + int(ky), ix = ix0[j] + int(kx);
                bool ok = iy >= 0 && iy < int(H) && ix >= 0 && ix < int(Wd);
                valid[j] = ok;
                off[j] = ok ? xImage[j] + uint(iy) * Wd + uint(ix) : xImage[j];
            }
            uint wk = ky * p.kernelWidth + kx;
            for (uint c = 0; c < C; c++) {
                float bv[TILE_N];
                [[unroll]] for (int j = 0; j < TILE_N; j++) { float pixel = LOAD(X, off[j] + c * HW); bv[j] = valid[j] ? pixel : 0.0; }
                float aL[AL];
                [[unroll]] for (int g = 0; g < AL; g++) aL[g] = LOAD(W, wRow[g] + c * KK + wk);
                [[unroll]] for (int r = 0; r < TILE_M; r++) {
                    float av = subgroupBroadcast(aL[r / SUBGROUP_SIZE], r % SUBGROUP_SIZE);
                    [[unroll]] for (int j = 0; j < TILE_N; j++) acc[r][j] += av * bv[j];
                }
            }
        }
        }
#endif
        [[unroll]] for (int r = 0; r < TILE_M; r++) {
            uint o = m0 + r;
            if (o >= O) break;
            float bo = p.hasBias != 0 ? LOAD(TensorBuffer(p.bias), o) : 0.0;
            [[unroll]] for (int j = 0; j < TILE_N; j++) {
                uint column = n0 + j;
                if (column < columns) {
                    uint b = column / OHW, pos = column - b * OHW;
                    STORE(Y, (b * O + o) * OHW + pos, acc[r][j] + bo + addendAt(b, o, pos));
                }
            }
        }
    }
}
#endif
