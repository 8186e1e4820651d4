// Shared by every Kiln kernel. The shader compiler prepends `#version 460`, the `#define`s of the
// variant being built, and then expands `#include "common.glsl"` in place.
//
// Tensors reach kernels as 64-bit buffer device addresses in the push-constant block (one `uvec2`
// per tensor) instead of descriptors: nothing is ever *bound*, so a tensor larger than
// maxStorageBufferRange (128 MiB on lavapipe) needs no splitting, and a dispatch records no
// descriptor set at all.
//
// Variant defines (all optional):
//   KILN_F16  1 = tensors are stored as float16 (arithmetic stays f32), 0 = float32 storage.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_buffer_reference_uvec2 : require

#ifndef KILN_F16
#define KILN_F16 0
#endif

// f16 types are declared only in f16 variants, so f32 kernels run on devices without
// storageBuffer16BitAccess / shaderFloat16.
#if KILN_F16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(buffer_reference, std430, buffer_reference_align = 2) buffer Float16Buffer { float16_t v[]; };
layout(buffer_reference, std430, buffer_reference_align = 8) buffer Float16x4Buffer { f16vec4 v[]; };
#endif

layout(buffer_reference, std430, buffer_reference_align = 4) buffer Float32Buffer { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 16) buffer Float32x4Buffer { vec4 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer Int32Buffer { int v[]; };

// `TensorBuffer(address)` views a tensor in its storage type; LOAD/STORE always speak f32.
// The x4 forms need the element index to be a multiple of 4 (address 16-byte / 8-byte aligned).
#if KILN_F16
// f32 -> f16 storage as torch's `.half()` makes it: a finite value from 65520 on (65504 plus half an f16 ulp) becomes
// +-inf. Vulkan leaves the rounding of a conversion to the implementation, and one that rounds toward zero would turn
// such an overflow into 65504, a finite value where the reference has an infinity. NaN and infinities pass unchanged.
float halfRange(float v) { return abs(v) >= 65520.0 ? v * uintBitsToFloat(0x7f800000u) : v; }
vec4 halfRange(vec4 v) { return mix(v, v * uintBitsToFloat(0x7f800000u), greaterThanEqual(abs(v), vec4(65520.0))); }
#define TensorBuffer Float16Buffer
#define Tensor4Buffer Float16x4Buffer
#define LOAD(buffer, index) float((buffer).v[index])
#define STORE(buffer, index, value) (buffer).v[index] = float16_t(halfRange(value))
#define LOAD4(buffer, index4) vec4((buffer).v[index4])
#define STORE4(buffer, index4, value) (buffer).v[index4] = f16vec4(halfRange(value))
#else
#define TensorBuffer Float32Buffer
#define Tensor4Buffer Float32x4Buffer
#define LOAD(buffer, index) ((buffer).v[index])
#define STORE(buffer, index, value) (buffer).v[index] = (value)
#define LOAD4(buffer, index4) ((buffer).v[index4])
#define STORE4(buffer, index4, value) (buffer).v[index4] = (value)
#endif

// `loadWide4(address, index4)` / `storeWide4`: elements 4*index4 .. 4*index4+3 of a tensor through 64-bit loads/stores (one
// for f16, two for f32), address 8-byte aligned. On lavapipe each buffer load is a loop over the lanes
// per 32-bit component, so this is 1 (f16) or 2 (f32) loops where four scalar LOADs are 4.
// Needs shaderInt64: compiled only into variants that define KILN_WIDE_LOADS 1.
#ifndef KILN_WIDE_LOADS
#define KILN_WIDE_LOADS 0
#endif
#if KILN_WIDE_LOADS
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(buffer_reference, std430, buffer_reference_align = 8) buffer Uint64Buffer { uint64_t v[]; };
vec4 loadWide4(uvec2 address, uint index4) {
    Uint64Buffer words = Uint64Buffer(address);
#if KILN_F16
    uvec2 halves = unpack32(words.v[index4]);
    return vec4(unpackHalf2x16(halves.x), unpackHalf2x16(halves.y));
#else
    return uintBitsToFloat(uvec4(unpack32(words.v[2 * index4]), unpack32(words.v[2 * index4 + 1])));
#endif
}
// The store counterpart: elements 4*index4 .. 4*index4+3 through 64-bit stores.
void storeWide4(uvec2 address, uint index4, vec4 value) {
    Uint64Buffer words = Uint64Buffer(address);
#if KILN_F16
    vec4 ranged = halfRange(value);
    words.v[index4] = pack64(uvec2(packHalf2x16(ranged.xy), packHalf2x16(ranged.zw)));
#else
    uvec4 bits = floatBitsToUint(value);
    words.v[2 * index4] = pack64(bits.xy);
    words.v[2 * index4 + 1] = pack64(bits.zw);
#endif
}
#endif

// Grid-stride loops keep dispatch counts under maxComputeWorkGroupCount (65535 on lavapipe)
// whatever the tensor size: `for (uint i = FIRST_INDEX; i < n; i += INDEX_STRIDE)`.
#define FIRST_INDEX (gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x)
#define INDEX_STRIDE (gl_NumWorkGroups.x * gl_WorkGroupSize.x * gl_NumWorkGroups.y)

float sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }
