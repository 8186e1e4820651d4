// Winograd F(2x2, 3x3) transforms (Lavin & Gray, https://arxiv.org/abs/1509.09308) around the 16
// batched GEMMs that replace a 3x3, stride-1, padding-1 convolution (Graph.winogradConvolution).
// Transform-domain position ξ = 4 * row + column; T = batch * tilesY * tilesX tiles of 2x2 outputs,
// tilesY = ceil(height / 2), tilesX = ceil(width / 2), tile t = (n * tilesY + ty) * tilesX + tx.
// Exactly one of these selects the kernel:
//   WINOGRAD_INPUT   x [batch, channels, height, width] -> y [16, T, channels]: the 4x4 patch at rows
//                    2ty-1 .. 2ty+2, columns 2tx-1 .. 2tx+2 (zero outside) as Bᵀ d B. One item per (t, channel).
//                    UPSAMPLED 1: x is [batch, channels, height/2, width/2] and is read as its nearest-neighbour
//                    2x upsampling (height and width are the upsampled sizes).
//   WINOGRAD_WEIGHT  x [outChannels, channels, 3, 3] -> y [16, outChannels, channels]: G g Gᵀ. One item per (o, c).
//   WINOGRAD_OUTPUT  x [16, T, channels] -> y [batch, channels, height, width]: Aᵀ m A, cropped at the right and
//                    bottom edges, + bias [channels] (hasBias) + addend (hasAddend; [batch, channels, height,
//                    width] with addendPlane = height*width, addendPixel = 1, or [batch, channels, 1, 1] with
//                    addendPlane = 1, addendPixel = 0). One item per (t, channel).
// WIDE 1 (INPUT and OUTPUT): an item is 4 tiles side by side x 4 channels, read and written four values per
//   64-bit word (loadWide4 / storeWide4): a quarter of the memory instructions, which lavapipe runs as
//   per-lane loops. Needs KILN_WIDE_LOADS, channels % 4 == 0, width % 8 == 0 and 8-byte aligned tensors;
//   `count` is then T / 4 * channels / 4.
// Storage per KILN_F16, arithmetic f32. Workgroup: local_size_x = specialization constant 0; 1-D grid-stride.
#include "common.glsl"

layout(local_size_x_id = 0) in;

#ifndef UPSAMPLED
#define UPSAMPLED 0
#endif
#define SCALE (UPSAMPLED + 1)

// The 1-D transforms; each 2-D one applies them to the columns, then to the rows. `precise`: evaluated as
// written, as the reference does. Otherwise the compiler may fold d.z - d.y to 0 where both are one value
// (the UPSAMPLED path's repeated pixels), making 0 of inf - inf, which is NaN.
vec4 inputTransform(vec4 d) { precise vec4 t = vec4(d.x - d.z, d.y + d.z, d.z - d.y, d.y - d.w); return t; }
vec4 weightTransform(vec3 g) { precise vec4 t = vec4(g.x, (g.x + g.y + g.z) * 0.5, (g.x - g.y + g.z) * 0.5, g.z); return t; }
vec2 outputTransform(vec4 m) { precise vec2 t = vec2(m.x + m.y + m.z, m.y - m.z - m.w); return t; }

#if defined(WINOGRAD_INPUT)
layout(push_constant) uniform Parameters {
    uvec2 x; uvec2 y; uint count; uint channels; uint height; uint width; uint tilesY; uint tilesX; uint tiles;
} p;

#if WIDE
void main() {
    TensorBuffer x = TensorBuffer(p.x);
    uint quads = p.channels / 4;
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint t0 = (i / quads) * 4, c0 = (i - (i / quads) * quads) * 4;
        uint tx0 = t0 % p.tilesX, ty = (t0 / p.tilesX) % p.tilesY, n = t0 / (p.tilesX * p.tilesY);
        int top = 2 * int(ty) - 1;
        uint left = 2 * tx0;   // the row segment's first pixel: a multiple of 8
        vec4 transformed[16][4];   // [ξ][tile] over the four channels
        for (int e = 0; e < 4; e++) {
            uint sourceWidth = p.width / SCALE;
            uint plane = (n * p.channels + c0 + uint(e)) * (p.height / SCALE) * sourceWidth;
            float window[4][10];   // rows top .. top+3, columns left-1 .. left+8
            for (int r = 0; r < 4; r++) {
                int row = top + r;
                bool inside = row >= 0 && row < int(p.height);
                uint start = plane + uint(max(row, 0)) / SCALE * sourceWidth + left / SCALE;
#if UPSAMPLED
                // Four source pixels make the segment's eight.
                vec4 source = inside ? loadWide4(p.x, start / 4) : vec4(0.0);
                vec4 first = source.xxyy, second = source.zzww;
                window[r][9] = inside && left + 8 < p.width ? LOAD(x, start + 4) : 0.0;
#else
                vec4 first = inside ? loadWide4(p.x, start / 4) : vec4(0.0), second = inside ? loadWide4(p.x, start / 4 + 1) : vec4(0.0);
                window[r][9] = inside && left + 8 < p.width ? LOAD(x, start + 8) : 0.0;
#endif
                window[r][0] = inside && left > 0 ? LOAD(x, start - 1) : 0.0;
                for (int k = 0; k < 4; k++) { window[r][1 + k] = first[k]; window[r][5 + k] = second[k]; }
            }
            for (int j = 0; j < 4; j++) {
                mat4 columns;
                for (int k = 0; k < 4; k++) columns[k] = inputTransform(vec4(window[0][2 * j + k], window[1][2 * j + k], window[2][2 * j + k], window[3][2 * j + k]));
                for (int r = 0; r < 4; r++) {
                    vec4 v = inputTransform(vec4(columns[0][r], columns[1][r], columns[2][r], columns[3][r]));
                    for (int k = 0; k < 4; k++) transformed[4 * r + k][j][e] = v[k];
                }
            }
        }
        for (int position = 0; position < 16; position++)
            for (int j = 0; j < 4; j++) storeWide4(p.y, ((uint(position) * p.tiles + t0 + uint(j)) * p.channels + c0) / 4, transformed[position][j]);
    }
}
#else
void main() {
    TensorBuffer x = TensorBuffer(p.x), y = TensorBuffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint t = i / p.channels, c = i - t * p.channels;
        uint tx = t % p.tilesX, ty = (t / p.tilesX) % p.tilesY, n = t / (p.tilesX * p.tilesY);
        uint sourceWidth = p.width / SCALE, plane = (n * p.channels + c) * (p.height / SCALE) * sourceWidth;
        int top = 2 * int(ty) - 1, left = 2 * int(tx) - 1;
        mat4 columns;   // columns[j] = column j of the patch after Bᵀ: the column transform first
        for (int j = 0; j < 4; j++) {
            int column = left + j;
            vec4 d = vec4(0.0);
            for (int r = 0; r < 4; r++) {
                int row = top + r;
                if (row >= 0 && row < int(p.height) && column >= 0 && column < int(p.width))
                    d[r] = LOAD(x, plane + uint(row) / SCALE * sourceWidth + uint(column) / SCALE);
            }
            columns[j] = inputTransform(d);
        }
        for (int r = 0; r < 4; r++) {
            vec4 v = inputTransform(vec4(columns[0][r], columns[1][r], columns[2][r], columns[3][r]));
            for (int k = 0; k < 4; k++) STORE(y, (uint(4 * r + k) * p.tiles + t) * p.channels + c, v[k]);
        }
    }
}
#endif

#elif defined(WINOGRAD_WEIGHT)
layout(push_constant) uniform Parameters { uvec2 x; uvec2 y; uint count; } p;

void main() {
    TensorBuffer x = TensorBuffer(p.x), y = TensorBuffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        vec4 columns[3];
        for (int j = 0; j < 3; j++) columns[j] = weightTransform(vec3(LOAD(x, i * 9 + j), LOAD(x, i * 9 + 3 + j), LOAD(x, i * 9 + 6 + j)));
        for (int r = 0; r < 4; r++) {
            vec4 u = weightTransform(vec3(columns[0][r], columns[1][r], columns[2][r]));
            for (int k = 0; k < 4; k++) STORE(y, uint(4 * r + k) * p.count + i, u[k]);
        }
    }
}

#elif defined(WINOGRAD_OUTPUT)
layout(push_constant) uniform Parameters {
    uvec2 x; uvec2 y; uvec2 bias; uvec2 addend; uint count; uint channels; uint height; uint width; uint tilesY; uint tilesX;
    uint tiles; uint addendPlane; uint addendPixel; uint hasBias; uint hasAddend;
} p;

#if WIDE
void main() {
    uint quads = p.channels / 4;
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint t0 = (i / quads) * 4, o0 = (i - (i / quads) * quads) * 4;
        uint tx0 = t0 % p.tilesX, ty = (t0 / p.tilesX) % p.tilesY, n = t0 / (p.tilesX * p.tilesY);
        vec4 m[16][4];   // [ξ][tile] over the four channels
        for (int position = 0; position < 16; position++)
            for (int j = 0; j < 4; j++) m[position][j] = loadWide4(p.x, ((uint(position) * p.tiles + t0 + uint(j)) * p.channels + o0) / 4);
        for (int e = 0; e < 4; e++) {
            uint o = o0 + uint(e), plane = (n * p.channels + o) * p.height * p.width;
            float bias = p.hasBias != 0 ? LOAD(TensorBuffer(p.bias), o) : 0.0;
            float rows[2][8];   // two output rows of the four tiles
            for (int j = 0; j < 4; j++) {
                vec2 columns[4];
                for (int k = 0; k < 4; k++) columns[k] = outputTransform(vec4(m[k][j][e], m[4 + k][j][e], m[8 + k][j][e], m[12 + k][j][e]));
                for (int r = 0; r < 2; r++) {
                    vec2 values = outputTransform(vec4(columns[0][r], columns[1][r], columns[2][r], columns[3][r]));
                    rows[r][2 * j] = values.x + bias;
                    rows[r][2 * j + 1] = values.y + bias;
                }
            }
            for (int r = 0; r < 2; r++) {
                uint row = 2 * ty + uint(r);
                if (row >= p.height) break;
                uint start = row * p.width + 2 * tx0;
                for (int part = 0; part < 2; part++) {
                    vec4 values = vec4(rows[r][4 * part], rows[r][4 * part + 1], rows[r][4 * part + 2], rows[r][4 * part + 3]);
                    if (p.hasAddend != 0) {
                        if (p.addendPixel != 0) values += loadWide4(p.addend, (plane + start) / 4 + uint(part));
                        else values += LOAD(TensorBuffer(p.addend), n * p.channels + o);
                    }
                    storeWide4(p.y, (plane + start) / 4 + uint(part), values);
                }
            }
        }
    }
}
#else
void main() {
    TensorBuffer x = TensorBuffer(p.x), y = TensorBuffer(p.y);
    for (uint i = FIRST_INDEX; i < p.count; i += INDEX_STRIDE) {
        uint t = i / p.channels, o = i - t * p.channels;
        uint tx = t % p.tilesX, ty = (t / p.tilesX) % p.tilesY, n = t / (p.tilesX * p.tilesY);
        vec2 columns[4];
        for (int j = 0; j < 4; j++) {
            vec4 m;
            for (int r = 0; r < 4; r++) m[r] = LOAD(x, (uint(4 * r + j) * p.tiles + t) * p.channels + o);
            columns[j] = outputTransform(m);
        }
        float bias = p.hasBias != 0 ? LOAD(TensorBuffer(p.bias), o) : 0.0;
        uint plane = (n * p.channels + o) * p.height * p.width;
        for (int r = 0; r < 2; r++) {
            uint row = 2 * ty + uint(r);
            if (row >= p.height) break;
            vec2 values = outputTransform(vec4(columns[0][r], columns[1][r], columns[2][r], columns[3][r]));
            for (int k = 0; k < 2; k++) {
                uint column = 2 * tx + uint(k);
                if (column >= p.width) break;
                uint pixel = row * p.width + column;
                float addend = p.hasAddend != 0
                    ? LOAD(TensorBuffer(p.addend), (n * p.channels + o) * p.addendPlane + pixel * p.addendPixel) : 0.0;
                STORE(y, plane + pixel, values[k] + bias + addend);
            }
        }
    }
}
#endif
#endif
