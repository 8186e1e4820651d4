"""Write PyTorch reference fixtures for Kiln's CPU reference ops.

Rerun from the repository root:

    python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 numpy==2.4.6 safetensors==0.8.0
    .venv/bin/python Tests/Fixtures/generate_op_fixtures.py

(the same pins are in Tests/Fixtures/requirements.txt). Any build of torch 2.13.0
works: the CUDA build from PyPI or the `2.13.0+cpu` wheel; only the CPU is used.

Each case becomes Tests/KilnTests/Fixtures/ops/<case>.safetensors holding the
float32 inputs (embedding ids: int32), the reference result `output` (float32)
and string metadata: `op`, `inputs` (input names in call order) and `params`
(a JSON object with every param of the op, defaults included).

Inputs are drawn in float32 from a per-case seed; the reference is computed in
float64 from those same float32 values and only then rounded to float32, so the
fixture carries no float32 accumulation error of its own. Output is
byte-for-byte reproducible: rerunning rewrites identical files.
"""

import json
import math
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save
from torch.nn.attention import SDPBackend, sdpa_kernel

OUT_DIR = Path(__file__).resolve().parents[1] / "KilnTests" / "Fixtures" / "ops"


def randn(*shape, std=1.0, mean=0.0):
    return torch.randn(*shape) * std + mean


# --- reference implementations (inputs arrive as float64, ids as int64) ---


def ref_matmul(p, a, b, bias=None):
    if p["transpose_a"]:
        a = a.transpose(-1, -2)
    if p["transpose_b"]:
        b = b.transpose(-1, -2)
    y = a @ b
    return y + bias if bias is not None else y


def ref_timestep_embedding(p, t):
    # Re-expression of diffusers' get_timestep_embedding (not imported on purpose).
    half = p["dim"] // 2
    exponent = -math.log(p["max_period"]) * torch.arange(half, dtype=torch.float64)
    exponent = exponent / (half - p["downscale_freq_shift"])
    emb = p["scale"] * (t[:, None] * torch.exp(exponent)[None, :])
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if p["flip_sin_to_cos"]:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if p["dim"] % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


def ref_rope(p, x, cos, sin):
    real, imag = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
    rotated = torch.stack([-imag, real], dim=-1).flatten(-2)
    return x * cos + rotated * sin


def ref_group_norm(p, x, weight, bias):
    y = F.group_norm(x, p["groups"], weight, bias, p["eps"])
    return F.silu(y) if p["silu"] else y


def ref_geglu(p, x):
    h, gate = x.chunk(2, dim=-1)
    return h * F.gelu(gate)


def ref_attention(p, q, k, v, bias=None):
    # The math backend: torch's fused CPU kernel gives a NaN query row zeros instead of NaN.
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=p["causal"], scale=p["scale"])


def ref_guided_step(p, prediction, sample, coefficients, noise=None):
    # Classifier-free guidance, then an affine scheduler step: sample * a + guided * b (+ noise * n).
    guidance, sample_scale, output_scale, noise_scale = coefficients.unbind()
    unconditional, conditional = prediction.chunk(2) if p["guided"] else (prediction, None)
    guided = unconditional + guidance * (conditional - unconditional) if p["guided"] else unconditional
    step = sample * sample_scale + guided * output_scale
    return step + noise * noise_scale if noise is not None else step


CAST_TYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


REFERENCE = {
    "matmul": ref_matmul,
    "linear": lambda p, x, weight, bias=None: F.linear(x, weight, bias),
    "conv2d": lambda p, x, weight, bias=None: F.conv2d(
        x, weight, bias, stride=p["stride"], padding=p["padding"]),
    "group_norm": ref_group_norm,
    "layer_norm": lambda p, x, weight=None, bias=None: F.layer_norm(
        x, (x.shape[-1],), weight, bias, p["eps"]),
    "rms_norm": lambda p, x, weight=None: F.rms_norm(x, (x.shape[-1],), weight, p["eps"]),
    "softmax": lambda p, x: torch.softmax(x, dim=-1),
    "attention": ref_attention,
    "add": lambda p, a, b: a + b,
    "sub": lambda p, a, b: a - b,
    "mul": lambda p, a, b: a * b,
    "scale": lambda p, x: x * p["factor"],
    "silu": lambda p, x: F.silu(x),
    "gelu": lambda p, x: F.gelu(x),
    "gelu_tanh": lambda p, x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda p, x: x * torch.sigmoid(1.702 * x),
    "geglu": ref_geglu,
    "upsample_nearest_2x": lambda p, x: F.interpolate(x, scale_factor=2, mode="nearest"),
    "concat": lambda p, *xs: torch.cat(xs, dim=p["axis"]),
    "slice": lambda p, x: x.narrow(p["axis"], p["start"], p["length"]),
    "permute": lambda p, x: x.permute(*p["perm"]),
    "reshape": lambda p, x: x.reshape(p["shape"]),
    "embedding": lambda p, table, ids: F.embedding(ids, table),
    "timestep_embedding": ref_timestep_embedding,
    "modulate": lambda p, x, shift, scale: x * (1 + scale[:, None, :]) + shift[:, None, :],
    "rope": ref_rope,
    "exp": lambda p, x: torch.exp(x),
    # upper None: no upper bound (T5's relu as a clamp); JSON has no infinity.
    "clamp": lambda p, x: torch.clamp(x, p["lower"], p["upper"]),
    # Rounds the float32 values (the float64 copies are exact) to the target type.
    "cast": lambda p, x: x.float().to(CAST_TYPES[p["dtype"]]).double(),
    "guided_step": ref_guided_step,
}


# --- input builders that need more than randn ---


def rope_inputs(b, h, length, d):
    # Real rotary tables: angle = position * theta^(-2i/d), each angle used by one (real, imag) pair.
    freqs = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = (torch.arange(length, dtype=torch.float64)[:, None] * freqs[None, :])
    angles = angles.repeat_interleave(2, dim=-1)
    return dict(x=randn(b, h, length, d), cos=angles.cos().float(), sin=angles.sin().float())


def timesteps():
    return dict(t=torch.tensor([0.0, 1.0, 500.5, 999.0]))


def mm(ta=False, tb=False, bias=False):
    return dict(transpose_a=ta, transpose_b=tb, has_bias=bias)


def conv(stride, padding, bias):
    return dict(stride=list(stride), padding=list(padding), has_bias=bias)


def tsemb(dim, flip, shift, max_period=10000.0, scale=1.0):
    return dict(dim=dim, flip_sin_to_cos=flip, downscale_freq_shift=float(shift),
                max_period=float(max_period), scale=float(scale))


# (case name, op, params, builder returning the inputs in call order)
CASES = [
    ("matmul_2d_7x13x5", "matmul", mm(), lambda: dict(a=randn(7, 13), b=randn(13, 5))),
    ("matmul_batched_2x9x11x6", "matmul", mm(), lambda: dict(a=randn(2, 9, 11), b=randn(2, 11, 6))),
    ("matmul_4d_batched_2x3x5x7x4", "matmul", mm(), lambda: dict(a=randn(2, 3, 5, 7), b=randn(2, 3, 7, 4))),
    ("matmul_transpose_b_bias_shared_b", "matmul", mm(tb=True, bias=True),
     lambda: dict(a=randn(2, 5, 12), b=randn(7, 12), bias=randn(7))),
    ("matmul_transpose_a_batched", "matmul", mm(ta=True),
     lambda: dict(a=randn(2, 11, 6), b=randn(2, 11, 9))),
    ("matmul_transpose_both_bias_2d", "matmul", mm(ta=True, tb=True, bias=True),
     lambda: dict(a=randn(10, 3), b=randn(6, 10), bias=randn(6))),

    ("linear_2d_bias", "linear", dict(has_bias=True),
     lambda: dict(x=randn(5, 19), weight=randn(7, 19), bias=randn(7))),
    ("linear_3d_no_bias", "linear", dict(has_bias=False),
     lambda: dict(x=randn(2, 9, 16), weight=randn(33, 16))),
    ("linear_1d_bias", "linear", dict(has_bias=True),
     lambda: dict(x=randn(13), weight=randn(6, 13), bias=randn(6))),

    ("conv2d_3x3_pad1_batch2", "conv2d", conv((1, 1), (1, 1), True),
     lambda: dict(x=randn(2, 3, 10, 11), weight=randn(5, 3, 3, 3), bias=randn(5))),
    ("conv2d_3x3_stride2_pad1", "conv2d", conv((2, 2), (1, 1), True),
     lambda: dict(x=randn(1, 4, 9, 7), weight=randn(6, 4, 3, 3), bias=randn(6))),
    ("conv2d_1x1", "conv2d", conv((1, 1), (0, 0), True),
     lambda: dict(x=randn(2, 8, 5, 6), weight=randn(12, 8, 1, 1), bias=randn(12))),
    ("conv2d_4x2_stride1x2_pad0x1_no_bias", "conv2d", conv((1, 2), (0, 1), False),
     lambda: dict(x=randn(1, 3, 9, 10), weight=randn(4, 3, 4, 2))),

    # Non-zero mean and scale so a missing mean subtraction or variance term shows up.
    ("group_norm_c12_g3", "group_norm", dict(groups=3, eps=1e-5, silu=False),
     lambda: dict(x=randn(2, 12, 5, 7, std=2.0, mean=0.5), weight=randn(12), bias=randn(12))),
    ("group_norm_c12_g3_silu_eps1e-6", "group_norm", dict(groups=3, eps=1e-6, silu=True),
     lambda: dict(x=randn(2, 12, 6, 5, std=2.0, mean=0.5), weight=randn(12), bias=randn(12))),
    ("group_norm_c32_g32_per_channel_silu", "group_norm", dict(groups=32, eps=1e-6, silu=True),
     lambda: dict(x=randn(1, 32, 4, 3, std=3.0, mean=-1.0), weight=randn(32), bias=randn(32))),
    ("group_norm_c32_g8_1d_spatial", "group_norm", dict(groups=8, eps=1e-5, silu=False),
     lambda: dict(x=randn(2, 32, 9, mean=0.25), weight=randn(32), bias=randn(32))),

    ("layer_norm_affine", "layer_norm", dict(eps=1e-5, has_weight=True, has_bias=True),
     lambda: dict(x=randn(2, 7, 24, std=2.0, mean=0.5), weight=randn(24), bias=randn(24))),
    ("layer_norm_no_affine_eps1e-6", "layer_norm", dict(eps=1e-6, has_weight=False, has_bias=False),
     lambda: dict(x=randn(3, 5, 20, std=2.0, mean=-0.5))),
    ("layer_norm_weight_only", "layer_norm", dict(eps=1e-5, has_weight=True, has_bias=False),
     lambda: dict(x=randn(11, 13, mean=1.0), weight=randn(13))),

    ("rms_norm_weight", "rms_norm", dict(eps=1e-6, has_weight=True),
     lambda: dict(x=randn(2, 5, 24, std=2.0), weight=randn(24))),
    ("rms_norm_no_weight", "rms_norm", dict(eps=1e-5, has_weight=False),
     lambda: dict(x=randn(7, 13, mean=0.5))),

    ("softmax_2d", "softmax", {}, lambda: dict(x=randn(5, 13))),
    ("softmax_4d", "softmax", {}, lambda: dict(x=randn(2, 3, 7, 17))),
    # Logits far beyond exp's float32 range: passes only with max subtraction.
    ("softmax_large_magnitude", "softmax", {}, lambda: dict(x=randn(4, 29, std=30.0))),

    ("attention_self_b2h3l17d8", "attention", dict(scale=1 / math.sqrt(8), causal=False),
     lambda: dict(q=randn(2, 3, 17, 8), k=randn(2, 3, 17, 8), v=randn(2, 3, 17, 8))),
    ("attention_cross_lq10_lk23_d16", "attention", dict(scale=1 / math.sqrt(16), causal=False),
     lambda: dict(q=randn(1, 2, 10, 16), k=randn(1, 2, 23, 16), v=randn(1, 2, 23, 16))),
    ("attention_causal_l12", "attention", dict(scale=1 / math.sqrt(8), causal=True),
     lambda: dict(q=randn(2, 2, 12, 8), k=randn(2, 2, 12, 8), v=randn(2, 2, 12, 8))),
    # Lq < Lk pins down torch's top-left alignment of the causal mask.
    ("attention_causal_lq6_lk10", "attention", dict(scale=1 / math.sqrt(8), causal=True),
     lambda: dict(q=randn(1, 2, 6, 8), k=randn(1, 2, 10, 8), v=randn(1, 2, 10, 8))),
    ("attention_scale0p5_d12_dv20", "attention", dict(scale=0.5, causal=False),
     lambda: dict(q=randn(1, 2, 9, 12), k=randn(1, 2, 9, 12), v=randn(1, 2, 9, 20))),
    # An additive float bias joins the scaled scores (T5's relative position bias, unscaled scores).
    ("attention_bias_shared_batch", "attention", dict(scale=1.0, causal=False),
     lambda: dict(q=randn(2, 3, 7, 8), k=randn(2, 3, 11, 8), v=randn(2, 3, 11, 6), bias=randn(1, 3, 7, 11, std=3.0))),
    ("attention_bias_per_batch", "attention", dict(scale=1 / math.sqrt(8), causal=False),
     lambda: dict(q=randn(2, 2, 9, 8), k=randn(2, 2, 9, 8), v=randn(2, 2, 9, 8), bias=randn(2, 2, 9, 9, std=2.0))),

    ("add_same_shape", "add", {}, lambda: dict(a=randn(3, 7), b=randn(3, 7))),
    ("add_broadcast_rank4_rank3", "add", {}, lambda: dict(a=randn(2, 3, 4, 5), b=randn(3, 1, 5))),
    ("add_broadcast_vector_first", "add", {}, lambda: dict(a=randn(4), b=randn(2, 4))),
    ("sub_same_shape", "sub", {}, lambda: dict(a=randn(2, 9), b=randn(2, 9))),
    ("sub_broadcast_rank4_rank3", "sub", {}, lambda: dict(a=randn(2, 3, 4, 5), b=randn(3, 1, 5))),
    ("sub_broadcast_vector_first", "sub", {}, lambda: dict(a=randn(4), b=randn(2, 4))),
    ("mul_same_shape", "mul", {}, lambda: dict(a=randn(5, 3), b=randn(5, 3))),
    ("mul_broadcast_rank4_rank3", "mul", {}, lambda: dict(a=randn(2, 3, 4, 5), b=randn(3, 1, 5))),
    ("mul_broadcast_both_sides", "mul", {}, lambda: dict(a=randn(2, 1, 5), b=randn(3, 1))),

    ("scale_factor_0p5", "scale", dict(factor=0.5), lambda: dict(x=randn(3, 11))),
    ("scale_factor_sd_latent", "scale", dict(factor=0.18215), lambda: dict(x=randn(2, 4, 3, 5))),
    ("scale_factor_negative", "scale", dict(factor=-1.75), lambda: dict(x=randn(17))),

    # std 4 reaches the saturating tails where approximations drift.
    ("silu_2d_wide_range", "silu", {}, lambda: dict(x=randn(5, 19, std=4.0))),
    ("silu_4d", "silu", {}, lambda: dict(x=randn(2, 3, 4, 5))),
    ("gelu_2d_wide_range", "gelu", {}, lambda: dict(x=randn(5, 19, std=4.0))),
    ("gelu_4d", "gelu", {}, lambda: dict(x=randn(2, 3, 4, 5))),
    ("gelu_tanh_2d_wide_range", "gelu_tanh", {}, lambda: dict(x=randn(5, 19, std=4.0))),
    ("gelu_tanh_4d", "gelu_tanh", {}, lambda: dict(x=randn(2, 3, 4, 5))),
    ("quick_gelu_2d_wide_range", "quick_gelu", {}, lambda: dict(x=randn(5, 19, std=4.0))),
    ("quick_gelu_4d", "quick_gelu", {}, lambda: dict(x=randn(2, 3, 4, 5))),

    ("geglu_2d", "geglu", {}, lambda: dict(x=randn(3, 20, std=2.0))),
    ("geglu_3d", "geglu", {}, lambda: dict(x=randn(2, 5, 26, std=2.0))),

    ("upsample_nearest_2x_batch2", "upsample_nearest_2x", {}, lambda: dict(x=randn(2, 3, 5, 7))),
    ("upsample_nearest_2x_1x1", "upsample_nearest_2x", {}, lambda: dict(x=randn(1, 4, 1, 1))),

    ("concat_axis0", "concat", dict(axis=0), lambda: dict(a=randn(2, 5), b=randn(3, 5))),
    ("concat_axis1_channels", "concat", dict(axis=1),
     lambda: dict(a=randn(2, 3, 4, 5), b=randn(2, 6, 4, 5))),
    ("concat_last_axis_three_inputs", "concat", dict(axis=2),
     lambda: dict(a=randn(2, 3, 4), b=randn(2, 3, 1), c=randn(2, 3, 7))),

    ("slice_axis0", "slice", dict(axis=0, start=2, length=3), lambda: dict(x=randn(7, 5))),
    ("slice_axis1_4d", "slice", dict(axis=1, start=3, length=4), lambda: dict(x=randn(2, 8, 5, 3))),
    ("slice_last_axis", "slice", dict(axis=2, start=5, length=6), lambda: dict(x=randn(2, 3, 11))),

    ("permute_4d_0213", "permute", dict(perm=[0, 2, 1, 3]), lambda: dict(x=randn(2, 5, 3, 4))),
    ("permute_3d_201", "permute", dict(perm=[2, 0, 1]), lambda: dict(x=randn(3, 4, 5))),
    ("permute_4d_nchw_to_nhwc", "permute", dict(perm=[0, 2, 3, 1]), lambda: dict(x=randn(2, 3, 4, 5))),

    ("reshape_merge_heads", "reshape", dict(shape=[2, 5, 12]), lambda: dict(x=randn(2, 5, 3, 4))),
    ("reshape_split_axes", "reshape", dict(shape=[3, 2, 5, 2]), lambda: dict(x=randn(6, 10))),
    ("reshape_flatten", "reshape", dict(shape=[24]), lambda: dict(x=randn(2, 3, 4))),

    ("embedding_ids_2x5", "embedding", {},
     lambda: dict(table=randn(11, 6), ids=torch.randint(0, 11, (2, 5), dtype=torch.int32))),
    # First and last rows plus a repeat, to catch off-by-one row addressing.
    ("embedding_ids_1d_edges", "embedding", {},
     lambda: dict(table=randn(50, 9), ids=torch.tensor([0, 49, 7, 7, 23, 1, 48], dtype=torch.int32))),

    ("timestep_embedding_dim32_flip_shift0", "timestep_embedding", tsemb(32, True, 0), timesteps),
    ("timestep_embedding_dim16_noflip_shift1", "timestep_embedding", tsemb(16, False, 1), timesteps),
    ("timestep_embedding_dim15_odd", "timestep_embedding", tsemb(15, True, 0), timesteps),
    ("timestep_embedding_dim20_period1000_scale2", "timestep_embedding",
     tsemb(20, False, 1, max_period=1000.0, scale=2.0), timesteps),

    ("modulate_b2_l7_d12", "modulate", {},
     lambda: dict(x=randn(2, 7, 12), shift=randn(2, 12), scale=randn(2, 12, std=0.5))),
    ("modulate_b1_l5_d20", "modulate", {},
     lambda: dict(x=randn(1, 5, 20), shift=randn(1, 20), scale=randn(1, 20, std=0.5))),

    ("rope_b1_h2_l6_d8", "rope", {}, lambda: rope_inputs(1, 2, 6, 8)),
    ("rope_b2_h3_l9_d12", "rope", {}, lambda: rope_inputs(2, 3, 9, 12)),
]


NAN, INF = float("nan"), float("inf")


def poisoned(t, values):
    """`t` with chosen flat positions replaced (NaN, +-inf, values past float16's range)."""
    flat = t.flatten().clone()
    for index, value in values.items():
        flat[index] = value
    return flat.reshape(t.shape)


SPECIAL = {0: NAN, 1: INF, 2: -INF}

# torch's semantics for non-finite values, which the CPU reference follows: clamp keeps NaN and
# turns an infinity into its bound, softmax and norms spread a NaN or inf over the row or group,
# zero padding times an infinite weight is NaN, a query masked from every key gets zeros.
CASES += [
    ("exp_wide_range", "exp", {}, lambda: dict(x=randn(3, 17, std=3.0))),
    ("exp_non_finite", "exp", {}, lambda: dict(x=poisoned(randn(2, 9), {**SPECIAL, 3: 100.0, 4: -100.0}))),
    ("clamp_both_bounds", "clamp", dict(lower=-1.5, upper=2.0), lambda: dict(x=randn(4, 13, std=3.0))),
    ("clamp_non_finite", "clamp", dict(lower=-1.5, upper=2.0), lambda: dict(x=poisoned(randn(3, 7, std=3.0), SPECIAL))),
    ("clamp_half_range", "clamp", dict(lower=-65504.0, upper=65504.0),
     lambda: dict(x=poisoned(randn(2, 6), {**SPECIAL, 3: 70000.0, 4: -70000.0, 5: 65519.0}))),
    ("clamp_relu_non_finite", "clamp", dict(lower=0.0, upper=None), lambda: dict(x=poisoned(randn(2, 5), SPECIAL))),
    ("cast_float16", "cast", dict(dtype="float16"), lambda: dict(x=randn(3, 11, std=100.0))),
    ("cast_float16_non_finite", "cast", dict(dtype="float16"),
     lambda: dict(x=poisoned(randn(2, 8), {**SPECIAL, 3: 70000.0, 4: -70000.0, 5: 65519.0, 6: 65520.0, 7: 1e-8}))),
    ("cast_bfloat16_non_finite", "cast", dict(dtype="bfloat16"), lambda: dict(x=poisoned(randn(2, 8), {**SPECIAL, 3: 3e38}))),
    ("guided_step_with_noise", "guided_step", dict(guided=True),
     lambda: dict(prediction=randn(4, 3, 5), sample=randn(2, 3, 5), coefficients=randn(4), noise=randn(2, 3, 5))),
    ("guided_step_unguided", "guided_step", dict(guided=False),
     lambda: dict(prediction=randn(2, 3, 5), sample=randn(2, 3, 5), coefficients=randn(4))),
    ("guided_step_non_finite", "guided_step", dict(guided=True),
     lambda: dict(prediction=poisoned(randn(4, 3, 5), {0: NAN, 5: INF, 35: INF, 31: -INF}),
                  sample=poisoned(randn(2, 3, 5), {2: -INF}), coefficients=randn(4), noise=poisoned(randn(2, 3, 5), {3: INF}))),
    ("silu_non_finite", "silu", {}, lambda: dict(x=poisoned(randn(2, 5), {**SPECIAL, 3: 100.0, 4: -100.0}))),
    ("gelu_non_finite", "gelu", {}, lambda: dict(x=poisoned(randn(2, 5), {**SPECIAL, 3: 100.0, 4: -100.0}))),
    ("gelu_tanh_non_finite", "gelu_tanh", {}, lambda: dict(x=poisoned(randn(2, 5), {**SPECIAL, 3: 100.0, 4: -100.0}))),
    ("quick_gelu_non_finite", "quick_gelu", {}, lambda: dict(x=poisoned(randn(2, 5), {**SPECIAL, 3: 100.0, 4: -100.0}))),
    ("softmax_non_finite", "softmax", {},
     lambda: dict(x=poisoned(randn(5, 6), {0: NAN, 7: INF, 14: -INF, **{18 + i: -INF for i in range(6)}, 25: INF, 26: -INF}))),
    ("layer_norm_non_finite", "layer_norm", dict(eps=1e-5, has_weight=True, has_bias=True),
     lambda: dict(x=poisoned(randn(4, 9), {0: NAN, 10: INF, 20: -INF}), weight=randn(9), bias=poisoned(randn(9), {8: INF}))),
    ("rms_norm_non_finite", "rms_norm", dict(eps=1e-6, has_weight=True),
     lambda: dict(x=poisoned(randn(4, 8), {0: NAN, 9: INF, 18: -INF}), weight=randn(8))),
    # Finite weights: torch folds the mean into a per-channel shift (x * w rstd + (b - mean w rstd)), so an
    # infinite weight gives inf - inf there, an artifact of that rearrangement rather than a meaning.
    ("group_norm_silu_non_finite", "group_norm", dict(groups=2, eps=1e-5, silu=True),
     lambda: dict(x=poisoned(randn(2, 4, 3, 3), {0: NAN, 40: -INF}), weight=randn(4), bias=randn(4))),
    ("matmul_non_finite", "matmul", mm(),
     lambda: dict(a=poisoned(randn(5, 7), {0: NAN, 8: INF, 16: -INF}), b=poisoned(randn(7, 4), {13: -INF}))),
    ("conv2d_non_finite_padding", "conv2d", conv((1, 1), (1, 1), True),
     lambda: dict(x=poisoned(randn(1, 2, 5, 4), {0: NAN, 27: INF}), weight=poisoned(randn(3, 2, 3, 3), {7: -INF}), bias=randn(3))),
    ("attention_non_finite", "attention", dict(scale=1 / math.sqrt(8), causal=False),
     lambda: dict(q=poisoned(randn(1, 2, 5, 8), {3: NAN}), k=poisoned(randn(1, 2, 6, 8), {50: INF}),
                  v=poisoned(randn(1, 2, 6, 4), {5: -INF}))),
    ("attention_bias_masks_a_whole_row", "attention", dict(scale=1 / math.sqrt(8), causal=False),
     lambda: dict(q=randn(1, 2, 4, 8), k=randn(1, 2, 5, 8), v=randn(1, 2, 5, 8),
                  bias=poisoned(randn(1, 2, 4, 5), {**{5 + i: -INF for i in range(5)}, 12: -INF, 33: NAN}))),
]


def stable_header(blob):
    # safetensors keeps __metadata__ in a Rust HashMap, so its key order changes from
    # run to run; re-emit the same header with a fixed order (same length, same data).
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__")
    header = {"__metadata__": {k: meta[k] for k in ("op", "inputs", "params")}, **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n, "header grew while reordering"
    return blob[:8] + text.ljust(n) + blob[8 + n:]


def to_numpy(t):
    # Permuted results are strided views; safetensors needs a plain row-major buffer.
    return np.ascontiguousarray(t.numpy())


def write_case(name, op, params, build):
    # Seed from the name so adding or reordering cases never changes other fixtures.
    torch.manual_seed(zlib.crc32(name.encode()))
    inputs = build()
    ref_args = [t.long() if t.dtype == torch.int32 else t.double() for t in inputs.values()]
    output = REFERENCE[op](params, *ref_args).float()

    tensors = {key: to_numpy(t) for key, t in inputs.items()}
    tensors["output"] = to_numpy(output)
    metadata = {"op": op, "inputs": ",".join(inputs), "params": json.dumps(params)}
    blob = stable_header(save(tensors, metadata=metadata))
    (OUT_DIR / f"{name}.safetensors").write_bytes(blob)


def main():
    names = [case[0] for case in CASES]
    if len(set(names)) != len(names):
        sys.exit("duplicate case names")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in OUT_DIR.glob("*.safetensors"):
        stale.unlink()
    for case in CASES:
        write_case(*case)
    total = sum(p.stat().st_size for p in OUT_DIR.glob("*.safetensors"))
    print(f"wrote {len(CASES)} fixtures ({total} bytes) to {OUT_DIR}")


if __name__ == "__main__":
    main()
