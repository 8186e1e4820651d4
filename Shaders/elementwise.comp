// Elementwise kernels. Exactly one of these selects the kernel (the engine sets it):
//   UNARY_FUNCTION n   y = f(x) over `count` elements: 0 SiLU, 1 GELU (erf), 2 GELU (tanh),
//                      3 quick-GELU, 4 y = x * factor, 5 exp, 6 clamp to [lower, upper] (NaN stays NaN).
//   BINARY_OPERATOR n  y = a op b with broadcasting through per-operand strides over a rank-6
//                      view of y (stride 0 on broadcast dims): 0 add, 1 sub, 2 mul.
//   GEGLU              x [rows, 2N] -> y [rows, N] = x[:, :N] * gelu(x[:, N:]).
//   MODULATE           x [B, L, D], shift/scale [B, D] -> x * (1 + scale) + shift.
//   ROPE               x [B, H, L, D], cos/sin [L, D] -> rotary embedding on interleaved pairs.
//   TIMESTEP_EMBEDDING t [N] -> y [N, dim], diffusers' sinusoidal embedding.
//   CAST               converts storage: SOURCE_F16 / TARGET_F16 (0 or 1) name the two types.
//   GUIDED_STEP        y = sample * a + (u + g * (c - u)) * b (+ noise * n) (Operation.guidedStep): u, c the
//                      halves of `prediction` (KILN_F16 names its storage), everything else f32.
// VECTOR4 1 (UNARY_FUNCTION, same-shape BINARY_OPERATOR) processes vec4s; `count` is then in vec4s.
// Workgroup: local_size_x = specialization constant 0. Grid: 1-D grid-stride (Dispatch.linearGroups).
#include "common.glsl"

layout(local_size_x_id = 0) in;

// erf with absolute error below 1.5e-7 (Abramowitz & Stegun 7.1.26); GLSL has no erf.
float erf_approx(float x) {
    float t = 1.0 / (1.0 + 0.3275911 * abs(x));
    float poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - poly * exp(-x * x));
}
float gelu(float x) { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); }
vec4 gelu(vec4 x) { return vec4(gelu(x.x), gelu(x.y), gelu(x.z), gelu(x.w)); }

#if defined(UNARY_FUNCTION)
layout(push_constant) uniform Parameters { uvec2 x; uvec2 y; uint count; float factor; float lower; float upper; } p;

#define APPLY(T)                                                                              \
    T apply(T v) {                                                                            \
        if (UNARY_FUNCTION == 0) return v / (1.0 + exp(-v));                                  \
        if (UNARY_FUNCTION == 1) return gelu(v);                                              \
        if (UNARY_FUNCTION == 2) {                                                            \
            T inner = 0.7978845608028654 * (v + 0.044715 * v * v * v);                        \
            /* tanh(u) = 1 - 2 / (exp(2u) + 1) stays finite for large |u|, unlike GLSL tanh */ \
            return 0.5 * v * (2.0 - 2.0 / (exp(2.0 * inner) + 1.0));                          \
        }                                                                                     \
        if (UNARY_FUNCTION == 3) return v / (1.0 + exp(-1.702 * v));                          \
        if (UNARY_FUNCTION == 5) return exp(v);                                               \
        /* GLSL's clamp is min(max()), which returns a bound for NaN (IEEE maxNum) */          \
        if (UNARY_FUNCTION == 6) return mix(clamp(v, p.lower, p.upper), v, isnan(v));         \
        return v * p.factor;                                                                  \
    }
APPLY(float)
APPLY(vec4)

void main() {
#if VECTOR4
    Tensor4Buffer x = Tensor4Buffer(p.x), y = Tensor4Buffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) STORE4(y, i, apply(LOAD4(x, i)));
#else
    TensorBuffer x = TensorBuffer(p.x), y = TensorBuffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) STORE(y, i, apply(LOAD(x, i)));
#endif
}

#elif defined(BINARY_OPERATOR)
layout(push_constant) uniform Parameters {
    uvec2 a; uvec2 b; uvec2 y; uint count; uint dims[6]; uint stridesA[6]; uint stridesB[6];
} p;

#define COMBINE(l, r) (BINARY_OPERATOR == 0 ? (l) + (r) : BINARY_OPERATOR == 1 ? (l) - (r) : (l) * (r))

void main() {
#if VECTOR4
    Tensor4Buffer a = Tensor4Buffer(p.a), b = Tensor4Buffer(p.b), y = Tensor4Buffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) STORE4(y, i, COMBINE(LOAD4(a, i), LOAD4(b, i)));
#else
    TensorBuffer a = TensorBuffer(p.a), b = TensorBuffer(p.b), y = TensorBuffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint rest = i, indexA = 0, indexB = 0;
        for (int axis = 5; axis >= 0; --axis) {
            uint coordinate = rest % p.dims[axis];
            rest /= p.dims[axis];
            indexA += coordinate * p.stridesA[axis];
            indexB += coordinate * p.stridesB[axis];
        }
        STORE(y, i, COMBINE(LOAD(a, indexA), LOAD(b, indexB)));
    }
#endif
}

#elif defined(GEGLU)
layout(push_constant) uniform Parameters { uvec2 x; uvec2 y; uint count; uint halfWidth; } p;

void main() {
    TensorBuffer x = TensorBuffer(p.x), y = TensorBuffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint row = i / p.halfWidth, column = i - row * p.halfWidth;
        uint base = row * 2 * p.halfWidth + column;
        STORE(y, i, LOAD(x, base) * gelu(LOAD(x, base + p.halfWidth)));
    }
}

#elif defined(MODULATE)
layout(push_constant) uniform Parameters { uvec2 x; uvec2 shift; uvec2 scale; uvec2 y; uint count; uint sequenceLength; uint width; } p;

void main() {
    TensorBuffer x = TensorBuffer(p.x), shift = TensorBuffer(p.shift), scale = TensorBuffer(p.scale), y = TensorBuffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint d = i % p.width, row = (i / (p.sequenceLength * p.width)) * p.width + d;
        STORE(y, i, LOAD(x, i) * (1.0 + LOAD(scale, row)) + LOAD(shift, row));
    }
}

#elif defined(ROPE)
layout(push_constant) uniform Parameters { uvec2 x; uvec2 cosines; uvec2 sines; uvec2 y; uint count; uint sequenceLength; uint width; } p;

void main() {
    TensorBuffer x = TensorBuffer(p.x), c = TensorBuffer(p.cosines), s = TensorBuffer(p.sines), y = TensorBuffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint d = i % p.width, position = (i / p.width) % p.sequenceLength;
        uint table = position * p.width + d;
        // Pairs (x[2k], x[2k+1]) rotate as complex numbers: the partner enters with a sign.
        float rotated = (d & 1u) == 0u ? -LOAD(x, i + 1) : LOAD(x, i - 1);
        STORE(y, i, LOAD(x, i) * LOAD(c, table) + rotated * LOAD(s, table));
    }
}

#elif defined(TIMESTEP_EMBEDDING)
layout(push_constant) uniform Parameters {
    uvec2 t; uvec2 y; uint count; uint dimension; uint flipSinToCos; float downscaleFrequencyShift; float maxPeriod; float scale;
} p;

void main() {
    TensorBuffer t = TensorBuffer(p.t), y = TensorBuffer(p.y);
    uint halfDimension = p.dimension / 2;
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint row = i / p.dimension, column = i - row * p.dimension;
        if (column >= 2 * halfDimension) { STORE(y, i, 0.0); continue; }
        bool firstHalf = column < halfDimension;
        uint frequency = firstHalf ? column : column - halfDimension;
        float exponent = -log(p.maxPeriod) * float(frequency) / (float(halfDimension) - p.downscaleFrequencyShift);
        float angle = p.scale * LOAD(t, row) * exp(exponent);
        bool useSine = firstHalf != (p.flipSinToCos != 0u);
        STORE(y, i, useSine ? sin(angle) : cos(angle));
    }
}

#elif defined(CAST)
layout(push_constant) uniform Parameters { uvec2 x; uvec2 y; uint count; } p;

void main() {
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
#if SOURCE_F16
        float value = float(Float16Buffer(p.x).v[i]);
#else
        float value = Float32Buffer(p.x).v[i];
#endif
#if TARGET_F16
        Float16Buffer(p.y).v[i] = float16_t(halfRange(value));
#else
        Float32Buffer(p.y).v[i] = value;
#endif
    }
}

#elif defined(GUIDED_STEP)
layout(push_constant) uniform Parameters {
    uvec2 prediction; uvec2 sample_; uvec2 coefficients; uvec2 noise; uvec2 y; uint count; uint guided; uint hasNoise;
} p;

void main() {
    TensorBuffer prediction = TensorBuffer(p.prediction);
    Float32Buffer sample_ = Float32Buffer(p.sample_), noise = Float32Buffer(p.noise), y = Float32Buffer(p.y);
    Float32Buffer k = Float32Buffer(p.coefficients);
    float g = k.v[0], a = k.v[1], b = k.v[2], n = k.v[3];
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        // `precise`: no fused multiply-adds, so the f32 roundings are those of the host's guidance and step.
        precise float guided = LOAD(prediction, i);
        if (p.guided != 0) guided = guided + g * (LOAD(prediction, p.count + i) - guided);
        precise float next = sample_.v[i] * a + guided * b;
        if (p.hasNoise != 0) next = next + noise.v[i] * n;
        y.v[i] = next;
    }
}
#endif
