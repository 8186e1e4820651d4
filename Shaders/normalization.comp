// Row reductions: one workgroup normalises one row at a time (rows loop over the grid).
//   GROUP_NORM   x [N, C, S] (S = spatial size), rows = N * groups, a row is the C/groups
//                channels x S values of one group; weight/bias [C]; SILU 1 fuses y * sigmoid(y).
//   LAYER_NORM   x [rows, width]; HAS_WEIGHT / HAS_BIAS 0|1.
//   RMS_NORM     x [rows, width]; HAS_WEIGHT 0|1.
//   SOFTMAX      x [rows, width], over width.
// Mean and variance are two passes in f32 (more accurate than sum of squares on large rows).
// WIDE_ROWS 0|1 (GROUP_NORM, LAYER_NORM): rows read and written four values at a time; needs
//   KILN_WIDE_LOADS, a row width (GROUP_NORM: S) that is a multiple of 4 and 8-byte aligned tensors.
// Workgroup: local_size_x = specialization constant 0 (a power of two). Grid: min(rows, 65535) groups.
#include "common.glsl"

layout(local_size_x_id = 0) in;
#ifndef WIDE_ROWS
#define WIDE_ROWS 0
#endif

shared float partial[gl_WorkGroupSize.x];

// Sum (or max) of every invocation's `value`, returned to all of them.
float workgroupReduce(float value, bool takeMax) {
    uint lane = gl_LocalInvocationID.x;
    partial[lane] = value;
    barrier();
    for (uint width = gl_WorkGroupSize.x / 2; width > 0; width /= 2) {
        if (lane < width) partial[lane] = takeMax ? max(partial[lane], partial[lane + width]) : partial[lane] + partial[lane + width];
        barrier();
    }
    float result = partial[0];
    barrier();
    return result;
}

#if defined(GROUP_NORM)
layout(push_constant) uniform Parameters {
    uvec2 x; uvec2 weight; uvec2 bias; uvec2 y; uint rows; uint channelsPerGroup; uint spatial; uint groups; float epsilon;
} p;
#define ROW_WIDTH (p.channelsPerGroup * p.spatial)
#else
layout(push_constant) uniform Parameters { uvec2 x; uvec2 weight; uvec2 bias; uvec2 y; uint rows; uint width; float epsilon; } p;
#define ROW_WIDTH p.width
#endif

void main() {
    TensorBuffer x = TensorBuffer(p.x), y = TensorBuffer(p.y);
    TensorBuffer weight = TensorBuffer(p.weight), bias = TensorBuffer(p.bias);
    uint lane = gl_LocalInvocationID.x, lanes = gl_WorkGroupSize.x;
    uint width = ROW_WIDTH;
    for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
        uint base = row * width;
#if defined(SOFTMAX)
        float localMax = -3.402823e38;
        for (uint i = lane; i < width; i += lanes) localMax = max(localMax, LOAD(x, base + i));
        float rowMax = workgroupReduce(localMax, true);
        float localSum = 0.0;
        for (uint i = lane; i < width; i += lanes) localSum += exp(LOAD(x, base + i) - rowMax);
        float inverse = 1.0 / workgroupReduce(localSum, false);
        for (uint i = lane; i < width; i += lanes) STORE(y, base + i, exp(LOAD(x, base + i) - rowMax) * inverse);
#elif defined(RMS_NORM)
        float localSquares = 0.0;
        for (uint i = lane; i < width; i += lanes) { float v = LOAD(x, base + i); localSquares += v * v; }
        float scale = inversesqrt(workgroupReduce(localSquares, false) / float(width) + p.epsilon);
        for (uint i = lane; i < width; i += lanes) {
            float v = LOAD(x, base + i) * scale;
#if HAS_WEIGHT
            v *= LOAD(weight, i);
#endif
            STORE(y, base + i, v);
        }
#elif WIDE_ROWS
        // Four values per access (loadWide4/storeWide4): a quarter of lavapipe's per-lane load loops.
        uint base4 = base / 4, width4 = width / 4;
        float localSum = 0.0;
        for (uint i = lane; i < width4; i += lanes) { vec4 v = loadWide4(p.x, base4 + i); localSum += (v.x + v.y) + (v.z + v.w); }
        float mean = workgroupReduce(localSum, false) / float(width);
        float localSquares = 0.0;
        for (uint i = lane; i < width4; i += lanes) { vec4 d = loadWide4(p.x, base4 + i) - mean; localSquares += dot(d, d); }
        float inverseDeviation = inversesqrt(workgroupReduce(localSquares, false) / float(width) + p.epsilon);
        for (uint i = lane; i < width4; i += lanes) {
            vec4 v = (loadWide4(p.x, base4 + i) - mean) * inverseDeviation;
#if defined(GROUP_NORM)
            uint channel = (row % p.groups) * p.channelsPerGroup + 4 * i / p.spatial;   // spatial % 4 == 0
            v = v * LOAD(weight, channel) + LOAD(bias, channel);
#if SILU
            v = v / (1.0 + exp(-v));
#endif
#else
#if HAS_WEIGHT
            v *= loadWide4(p.weight, i);
#endif
#if HAS_BIAS
            v += loadWide4(p.bias, i);
#endif
#endif
            storeWide4(p.y, base4 + i, v);
        }
#else
        float localSum = 0.0;
        for (uint i = lane; i < width; i += lanes) localSum += LOAD(x, base + i);
        float mean = workgroupReduce(localSum, false) / float(width);
        float localSquares = 0.0;
        for (uint i = lane; i < width; i += lanes) { float d = LOAD(x, base + i) - mean; localSquares += d * d; }
        float inverseDeviation = inversesqrt(workgroupReduce(localSquares, false) / float(width) + p.epsilon);
        for (uint i = lane; i < width; i += lanes) {
            float v = (LOAD(x, base + i) - mean) * inverseDeviation;
#if defined(GROUP_NORM)
            uint channel = (row % p.groups) * p.channelsPerGroup + i / p.spatial;
            v = v * LOAD(weight, channel) + LOAD(bias, channel);
#if SILU
            v = v / (1.0 + exp(-v));
#endif
#else
#if HAS_WEIGHT
            v *= LOAD(weight, i);
#endif
#if HAS_BIAS
            v += LOAD(bias, i);
#endif
#endif
            STORE(y, base + i, v);
        }
#endif
    }
}
