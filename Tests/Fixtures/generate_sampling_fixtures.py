"""Write reference fixtures for KilnSampling: torch.randn streams and diffusers scheduler runs.

Rerun from the repository root:

    python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 numpy==2.4.6 diffusers==0.39.0
    .venv/bin/python Tests/Fixtures/generate_sampling_fixtures.py

(the same pins are in Tests/Fixtures/requirements.txt; the `2.13.0+cpu` wheel works). Run it on an
x86-64 machine: torch.randn's float32 kernel for tensors of 16 or more elements differs by build
(see TorchGenerator.swift). The script re-runs itself with ATEN_CPU_CAPABILITY=default to record
the portable libm kernel as well.

Writes Tests/KilnSamplingTests/Fixtures/:
- randn.json: for each seed, a sequence of randn calls on one generator. Each call records its
  shape and either every value (as float32 bit patterns) or, for big shapes, the FNV-1a 64 hash
  of the little-endian float32 bytes plus the first and last 8 bit patterns.
- randn_scalar_libm.json: the same, drawn with the portable (non-AVX) kernel.
- schedulers.json: for each scheduler class built with `from_config` from a pipeline's
  scheduler_config.json: the timesteps, sigmas and init_noise_sigma for several step counts,
  scale_model_input of a small sample, add_noise, and the final latent of a whole sampling loop
  driven by a fake model (model_output = 0.1 * scaled_input + float32(sin(t / 100)), float32),
  starting from torch.randn on a seeded generator that also feeds the scheduler's own noise.
  Extra cases after the base grid cover options the grid leaves out (exponential sigmas,
  sigma_min/sigma_max, DDPM variance types with a fake model that also outputs a variance half,
  PNDM's Runge-Kutta warm-up, LCM settings, flow-matching shifts and pipeline sigmas).
  `begin_index_cases` record img2img as diffusers' pipelines run it: the schedule cut at
  t_start * order, set_begin_index where the class has it, the init latents noised with
  add_noise (scale_noise for flow matching) at the first kept timestep, the loop, and the
  init latents re-noised after the first step as inpainting does.

Output is byte-for-byte reproducible.
"""

import inspect
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import diffusers

OUT_DIR = Path(__file__).resolve().parents[1] / "KilnSamplingTests" / "Fixtures"

SEEDS = [0, 42, 2**32 + 5, 18446744073709551557]
CALL_SEQUENCES = [
    [[1], [3], [15], [16], [17], [31], [64], [1]],
    [[4, 64, 64], [2, 4, 96, 80], [5], [1, 4, 5, 6]],
    [[2], [1], [16], [1], [3, 5]],
]
FULL_LIMIT = 256


def bits(tensor):
    return [int(v) for v in tensor.contiguous().view(torch.int32).flatten().numpy().astype(np.uint32)]


def fnv1a64(data):
    value = 0xCBF29CE484222325
    for byte in data:
        value ^= byte
        value = (value * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def randn_cases():
    cases = []
    for seed in SEEDS:
        for sequence in CALL_SEQUENCES:
            generator = torch.Generator("cpu").manual_seed(seed)
            calls = []
            for shape in sequence:
                values = torch.randn(shape, generator=generator, dtype=torch.float32)
                entry = {"shape": shape}
                if values.numel() <= FULL_LIMIT:
                    entry["bits"] = bits(values)
                else:
                    flat = values.flatten()
                    entry["fnv1a64"] = fnv1a64(flat.numpy().astype("<f4").tobytes())
                    entry["head"] = bits(flat[:8])
                    entry["tail"] = bits(flat[-8:])
                calls.append(entry)
            cases.append({"seed": str(seed), "calls": calls})
    return cases


def f32(value):
    # The shortest decimal that reads back as the same float32 keeps the JSON small.
    return float(str(np.float32(value)))


def floats(tensor):
    return [f32(v) for v in torch.as_tensor(tensor).flatten().tolist()]


SD1 = {  # runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
    "clip_sample": False,
}
SD2 = {  # stabilityai/stable-diffusion-2-1 (768, v-prediction)
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
SDXL = {  # stabilityai/stable-diffusion-xl-base-1.0
    "_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
    "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
    "trained_betas": None, "use_karras_sigmas": False,
}
BASE_CONFIGS = {
    "sd1": SD1,
    "sd2v": SD2,
    "sdxl": SDXL,
    "sdxl_trailing": {**SDXL, "timestep_spacing": "trailing"},
    "sdxl_karras": {**SDXL, "use_karras_sigmas": True},
    "linear_linspace": {"_class_name": "DDPMScheduler", "beta_schedule": "linear",
                        "timestep_spacing": "linspace", "clip_sample": True},
    "cosine_zero_snr": {**SD2, "beta_schedule": "squaredcos_cap_v2", "rescale_betas_zero_snr": True,
                        "timestep_spacing": "trailing"},
}
CLASSES = [
    "DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler", "HeunDiscreteScheduler", "PNDMScheduler", "DDPMScheduler",
    "LCMScheduler",
]
# Class/config pairs diffusers itself rejects or that make no sense to sample with.
SKIP = {
    ("EulerAncestralDiscreteScheduler", "cosine_zero_snr"),
    ("LCMScheduler", "cosine_zero_snr"),
    ("HeunDiscreteScheduler", "cosine_zero_snr"),
    ("DPMSolverMultistepScheduler", "cosine_zero_snr"),
    ("EulerDiscreteScheduler", "cosine_zero_snr"),
}
FLOW_CONFIGS = {
    "sd3": {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0},
    "flux": {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0,
             "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15,
             "base_image_seq_len": 256, "max_image_seq_len": 4096},
}
EXTRA_CASES = [  # (class, config name, config, options); appended after the base grid
    *[(class_name, name, config, {})
      for name, config in [("sdxl_exponential", {**SDXL, "use_exponential_sigmas": True}),
                           ("sdxl_karras_range", {**SDXL, "use_karras_sigmas": True,
                                                  "sigma_min": 0.1, "sigma_max": 10.0}),
                           ("sd1_exponential_range", {**SD1, "use_exponential_sigmas": True,
                                                      "sigma_min": 0.05, "sigma_max": 8.0})]
      for class_name in ["EulerDiscreteScheduler", "HeunDiscreteScheduler", "DPMSolverMultistepScheduler"]],
    ("HeunDiscreteScheduler", "sd2v_clip", {**SD2, "clip_sample": True, "clip_sample_range": 2.0}, {}),
    # Kiln's default model (scripts/default-model/train.py): v-prediction on a zero-terminal-SNR
    # schedule, trailing spacing; the first sigma is finite only through the pinned ᾱ_T.
    *[(class_name, "sd2v_zero_snr_trailing", {**SD2, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}, {})
      for class_name in ["DPMSolverMultistepScheduler", "EulerDiscreteScheduler", "DDIMScheduler"]],
    ("DDPMScheduler", "sd1_fixed_small_log", {**SD1, "variance_type": "fixed_small_log"}, {}),
    ("DDPMScheduler", "sd2v_fixed_large_trailing",
     {**SD2, "variance_type": "fixed_large", "timestep_spacing": "trailing"}, {}),
    ("DDPMScheduler", "sd1_learned_range", {**SD1, "variance_type": "learned_range"},
     {"model": "learned_variance"}),
    ("DDPMScheduler", "linear_linspace_learned",
     {**BASE_CONFIGS["linear_linspace"], "variance_type": "learned"}, {"model": "learned_variance"}),
    ("PNDMScheduler", "sd2v_prk", {**SD2, "skip_prk_steps": False}, {}),
    ("PNDMScheduler", "sd1_prk_trailing_alpha_one",
     {**SD1, "skip_prk_steps": False, "timestep_spacing": "trailing", "set_alpha_to_one": True}, {}),
    ("LCMScheduler", "sdxl_original30_clip",
     {**SDXL, "original_inference_steps": 30, "timestep_scaling": 5.0, "clip_sample": True}, {}),
    ("FlowMatchEulerDiscreteScheduler", "sd3_karras", {**FLOW_CONFIGS["sd3"], "use_karras_sigmas": True}, {}),
    ("FlowMatchEulerDiscreteScheduler", "sd3_exponential",
     {**FLOW_CONFIGS["sd3"], "use_exponential_sigmas": True}, {}),
    ("FlowMatchEulerDiscreteScheduler", "sd3_stochastic", {**FLOW_CONFIGS["sd3"], "stochastic_sampling": True}, {}),
    ("FlowMatchEulerDiscreteScheduler", "sd3_inverted", {**FLOW_CONFIGS["sd3"], "invert_sigmas": True}, {}),
    ("FlowMatchEulerDiscreteScheduler", "sd3_terminal", {**FLOW_CONFIGS["sd3"], "shift_terminal": 0.05}, {}),
    ("FlowMatchEulerDiscreteScheduler", "flux_linear", {**FLOW_CONFIGS["flux"], "time_shift_type": "linear"},
     {"mu": 0.8}),
    ("FlowMatchEulerDiscreteScheduler", "flux_pipeline_sigmas", FLOW_CONFIGS["flux"],
     {"mu": 0.8, "custom_sigmas": True}),
    ("FlowMatchEulerDiscreteScheduler", "flux_pipeline_sigmas_terminal",
     {**FLOW_CONFIGS["flux"], "shift_terminal": 0.1}, {"mu": 1.1, "custom_sigmas": True}),
    ("FlowMatchEulerDiscreteScheduler", "sd3_pipeline_sigmas", FLOW_CONFIGS["sd3"], {"custom_sigmas": True}),
]
BEGIN_INDEX_CASES = [  # (class, config name, config, mu)
    ("DDIMScheduler", "sd1", SD1, None),
    ("DDPMScheduler", "sd1", SD1, None),
    ("PNDMScheduler", "sd1", SD1, None),
    ("PNDMScheduler", "linear_linspace", BASE_CONFIGS["linear_linspace"], None),
    ("EulerDiscreteScheduler", "sdxl", SDXL, None),
    ("EulerAncestralDiscreteScheduler", "sdxl", SDXL, None),
    ("HeunDiscreteScheduler", "sdxl_karras", BASE_CONFIGS["sdxl_karras"], None),
    ("DPMSolverMultistepScheduler", "sdxl", SDXL, None),
    ("LCMScheduler", "sdxl", SDXL, None),
    ("FlowMatchEulerDiscreteScheduler", "sd3", FLOW_CONFIGS["sd3"], None),
    ("FlowMatchEulerDiscreteScheduler", "flux", FLOW_CONFIGS["flux"], 0.8),
]
BEGIN_INDEX_STEPS = 6
BEGIN_INDEX_STRENGTH = 0.5
STEP_COUNTS = [4, 10, 25]
LOOP_STEP_COUNTS = [4, 10]
LATENT_SHAPE = [1, 4, 5, 6]


def fake_model(model_input, timestep, model=None):
    offset = np.float32(math.sin(float(timestep) / 100.0))
    prediction = model_input * 0.1 + float(offset)
    if model == "learned_variance":
        # DDPM's learned variances: a second channel half the scheduler splits off, x² / (1 + x²)
        # so it stays in [0, 1) like a variance (learned) or an interpolation weight (learned_range).
        squared = model_input * model_input
        return torch.cat([prediction, squared / (1 + squared)], dim=1)
    return prediction


def set_timesteps(scheduler, steps, mu, custom_sigmas=False):
    if custom_sigmas:
        # What FluxPipeline passes: unshifted sigmas linspace(1, 1/n, n).
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    elif mu is None:
        scheduler.set_timesteps(steps)
    else:
        scheduler.set_timesteps(steps, mu=mu)


def run_loop(scheduler, steps, seed, mu, model=None, custom_sigmas=False):
    set_timesteps(scheduler, steps, mu, custom_sigmas)
    generator = torch.Generator("cpu").manual_seed(seed)
    latents = torch.randn(LATENT_SHAPE, generator=generator, dtype=torch.float32)
    latents = latents * getattr(scheduler, "init_noise_sigma", 1.0)
    accepts_generator = "generator" in inspect.signature(scheduler.step).parameters
    for timestep in scheduler.timesteps:
        scale = getattr(scheduler, "scale_model_input", None)
        model_input = scale(latents, timestep) if scale else latents
        output = fake_model(model_input, timestep, model)
        kwargs = {"generator": generator} if accepts_generator else {}
        latents = scheduler.step(output, timestep, latents, **kwargs).prev_sample
    return floats(latents)


def scheduler_case(class_name, config_name, config, mu=None, model=None, custom_sigmas=False):
    scheduler_class = getattr(diffusers, class_name)
    make = lambda: scheduler_class.from_config(config)
    case = {"class": class_name, "config_name": config_name, "config": config, "schedules": []}
    if mu is not None:
        case["mu"] = mu
    if model is not None:
        case["model"] = model
    if custom_sigmas:
        case["custom_sigmas"] = True
    for steps in STEP_COUNTS:
        scheduler = make()
        set_timesteps(scheduler, steps, mu, custom_sigmas)
        schedule = {
            "steps": steps,
            "timesteps": [float(t) for t in scheduler.timesteps.tolist()],
            # Flow-matching pipelines start from unit noise and never scale the model input.
            "init_noise_sigma": f32(getattr(scheduler, "init_noise_sigma", 1.0)),
        }
        if hasattr(scheduler, "sigmas") and isinstance(scheduler.sigmas, torch.Tensor):
            schedule["sigmas"] = floats(scheduler.sigmas)
        sample = torch.linspace(-2, 2, 12, dtype=torch.float32).reshape(1, 3, 2, 2)
        middle = scheduler.timesteps[len(scheduler.timesteps) // 2]
        if hasattr(scheduler, "scale_model_input"):
            schedule["scale_model_input"] = {
                "timestep": float(middle), "input": floats(sample),
                "output": floats(scheduler.scale_model_input(sample, middle)),
            }
        noise = torch.linspace(1, -1, 12, dtype=torch.float32).reshape(1, 3, 2, 2)
        scheduler = make()
        set_timesteps(scheduler, steps, mu, custom_sigmas)
        if class_name.startswith("FlowMatch"):
            noisy = scheduler.scale_noise(sample, scheduler.timesteps[1:2], noise)
        else:
            noisy = scheduler.add_noise(sample, noise, scheduler.timesteps[1:2])
        schedule["add_noise"] = {"timestep": float(scheduler.timesteps[1]), "noise": floats(noise),
                                 "output": floats(noisy)}
        if steps in LOOP_STEP_COUNTS:
            schedule["loop"] = {"seed": 1234, "shape": LATENT_SHAPE,
                                "final": run_loop(make(), steps, 1234, mu, model, custom_sigmas)}
        case["schedules"].append(schedule)
    return case


def scheduler_cases():
    cases = []
    for config_name, config in BASE_CONFIGS.items():
        for class_name in CLASSES:
            if (class_name, config_name) in SKIP:
                continue
            cases.append(scheduler_case(class_name, config_name, config))
    cases.append(scheduler_case("FlowMatchEulerDiscreteScheduler", "sd3", FLOW_CONFIGS["sd3"]))
    cases.append(scheduler_case("FlowMatchEulerDiscreteScheduler", "flux", FLOW_CONFIGS["flux"], mu=0.8))
    for class_name, config_name, config, options in EXTRA_CASES:
        cases.append(scheduler_case(class_name, config_name, config, **options))
    return cases


def noised(scheduler, original, noise, timestep):
    if isinstance(scheduler, diffusers.FlowMatchEulerDiscreteScheduler):
        return scheduler.scale_noise(original, timestep, noise)
    return scheduler.add_noise(original, noise, timestep)


def begin_index_case(class_name, config_name, config, mu, seed=77):
    scheduler = getattr(diffusers, class_name).from_config(config)
    steps, strength = BEGIN_INDEX_STEPS, BEGIN_INDEX_STRENGTH
    set_timesteps(scheduler, steps, mu)
    # StableDiffusionImg2ImgPipeline.get_timesteps
    t_start = max(steps - min(int(steps * strength), steps), 0)
    begin_index = t_start * scheduler.order
    timesteps = scheduler.timesteps[begin_index:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin_index)
    generator = torch.Generator("cpu").manual_seed(seed)
    count = int(np.prod(LATENT_SHAPE))
    # (i - count // 2) / 64: exact in float32, so the Swift side rebuilds it bit for bit.
    init = ((torch.arange(count, dtype=torch.float32) - count // 2) / 64).reshape(LATENT_SHAPE)
    noise = torch.randn(LATENT_SHAPE, generator=generator, dtype=torch.float32)
    latents = noised(scheduler, init, noise, timesteps[:1])
    record = {"class": class_name, "config_name": config_name, "config": config, "steps": steps,
              "strength": strength, "begin_index": begin_index,
              "timesteps": [float(t) for t in timesteps.tolist()], "seed": seed, "shape": LATENT_SHAPE,
              "noisy": floats(latents)}
    if mu is not None:
        record["mu"] = mu
    accepts_generator = "generator" in inspect.signature(scheduler.step).parameters
    scale = getattr(scheduler, "scale_model_input", None)
    for index, timestep in enumerate(timesteps):
        model_input = scale(latents, timestep) if scale else latents
        kwargs = {"generator": generator} if accepts_generator else {}
        latents = scheduler.step(fake_model(model_input, timestep), timestep, latents, **kwargs).prev_sample
        if index == 0:
            # Inpainting re-noises the init latents to the next timestep after every step.
            record["renoised"] = floats(noised(scheduler, init, noise, timesteps[1:2]))
    record["final"] = floats(latents)
    return record


def begin_index_cases():
    return [begin_index_case(*arguments) for arguments in BEGIN_INDEX_CASES]


def write(name, payload):
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    (OUT_DIR / name).write_text(text + "\n")
    print(f"wrote {name} ({len(text)} bytes)")


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if os.environ.get("ATEN_CPU_CAPABILITY") == "default":
        write("randn_scalar_libm.json", {"torch": torch.__version__, "cases": randn_cases()})
        return
    assert torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"), "run on an x86-64 AVX2 machine"
    write("randn.json", {"torch": torch.__version__, "cases": randn_cases()})
    subprocess.run([sys.executable, __file__], env={**os.environ, "ATEN_CPU_CAPABILITY": "default"}, check=True)
    write("schedulers.json", {"torch": torch.__version__, "diffusers": diffusers.__version__,
                              "cases": scheduler_cases(), "begin_index_cases": begin_index_cases()})


if __name__ == "__main__":
    main()
