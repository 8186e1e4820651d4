// Data movement without arithmetic.
//   STRIDED_COPY  y[outputOffset + Σ c_k outputStrides[k]] = x[inputOffset + Σ c_k inputStrides[k]]
//                 for every coordinate c of a rank-6 box `dims`. Covers permute, slice, concat
//                 (one dispatch per input) and nearest 2x upsampling (stride 0 on the copied axes).
//   EMBEDDING     table [V, D], ids int32 [R] -> y [R, D]; ids outside [0, V) are clamped here
//                 (the backend rejects them before running, as the CPU reference does).
// Workgroup: local_size_x = specialization constant 0. Grid: 1-D grid-stride.
#include "common.glsl"

layout(local_size_x_id = 0) in;

#if defined(STRIDED_COPY)
layout(push_constant) uniform Parameters {
    uvec2 x; uvec2 y; uint count; uint inputOffset; uint outputOffset; uint dims[6]; uint inputStrides[6]; uint outputStrides[6];
} p;

void main() {
    TensorBuffer x = TensorBuffer(p.x), y = TensorBuffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint rest = i, source = p.inputOffset, target = p.outputOffset;
        for (int axis = 5; axis >= 0; --axis) {
            uint coordinate = rest % p.dims[axis];
            rest /= p.dims[axis];
            source += coordinate * p.inputStrides[axis];
            target += coordinate * p.outputStrides[axis];
        }
        STORE(y, target, LOAD(x, source));
    }
}

#elif defined(EMBEDDING)
layout(push_constant) uniform Parameters { uvec2 table; uvec2 ids; uvec2 y; uint count; uint vocabulary; uint width; } p;

void main() {
    TensorBuffer table = TensorBuffer(p.table), y = TensorBuffer(p.y);
    Int32Buffer ids = Int32Buffer(p.ids);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint row = i / p.width, column = i - row * p.width;
        uint id = uint(clamp(ids.v[row], 0, int(p.vocabulary) - 1));
        STORE(y, i, LOAD(table, id * p.width + column));
    }
}
#endif
