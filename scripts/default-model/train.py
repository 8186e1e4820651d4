"""Trains kiln-shapes, Kiln's built-in text-to-image model, from scratch on rendered scenes.

CPU only, seeded, resumable: every stage checkpoints into --work and a restarted run continues
from the last checkpoint (a finished stage is skipped). Stages:

  1. tokenizer  CLIP BPE vocabulary learnt from the grammar's words
  2. vae        AutoencoderKL on rendered scenes (grammar scenes and slightly jittered ones)
  3. latents    the VAE encoder's mean for every grammar scene, and the latent scaling factor
  4. unet       UNet2DConditionModel + CLIPTextModel on those latents (v-prediction on a
                zero-terminal-SNR schedule, 10% empty prompts for classifier-free guidance, EMA)
  5. decoder    the VAE decoder fine-tuned with the encoder frozen (the latents do not change,
                so this stage may also run in a second process beside stage 4: --stage decoder)
  6. export     the diffusers StableDiffusionPipeline folder, weights in float16
  7. evaluate   generates the evaluation table and writes the model card with the measured accuracy

Usage (from the repository root):
  nice -n 19 python scripts/default-model/train.py            # whole run, about 90 minutes on 2 cores
"""

import argparse
import fcntl
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import clip_vocab  # noqa: E402
import scenes  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "Sources", "KilnDefaultModel", "Resources", "kiln-shapes")

TOKEN_LENGTH = 16  # model_max_length: the longest grammar prompt is 13 tokens with <|startoftext|>/<|endoftext|>

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[16, 32, 64, 64],
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    act_fn="silu",
)

UNET_CONFIG = dict(
    in_channels=4,
    out_channels=4,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[64, 128],
    layers_per_block=1,
    attention_head_dim=4,  # diffusers' legacy name: the number of heads per block
    cross_attention_dim=128,
    norm_num_groups=32,
)

TEXT_CONFIG = dict(
    hidden_size=128,
    intermediate_size=512,
    num_hidden_layers=3,
    num_attention_heads=4,
    max_position_embeddings=TOKEN_LENGTH,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
)

# The sampler the model card recommends (and the folder's scheduler): DPM-Solver++ 2M.
SAMPLER_CONFIG = dict(
    SCHEDULER_CONFIG,
    algorithm_type="dpmsolver++",
    solver_order=2,
    timestep_spacing="trailing",
    steps_offset=1,
)
RECOMMENDED = dict(steps=12, guidance=4.0)


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


class Run:
    """Checkpoint files and per-stage wall-clock accounting inside the work folder.

    state.json is only changed under a file lock and re-read first, so stages running in
    separate processes (e.g. the decoder fine-tuning beside the U-Net) keep each other's records.
    """

    def __init__(self, work):
        self.work = work
        os.makedirs(work, exist_ok=True)
        self.state_path = os.path.join(work, "state.json")
        self.state = self._read()

    def _read(self):
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                return json.load(f)
        return {"seconds": {}, "done": []}

    def _modify(self, change):
        with open(self.state_path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            change(state)
            tmp = self.state_path + f".{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(state, f, indent=2)
            os.replace(tmp, self.state_path)
            self.state = state

    def path(self, name):
        return os.path.join(self.work, name)

    def set(self, **values):
        self._modify(lambda state: state.update(values))

    def add_time(self, stage, seconds):
        def change(state):
            state["seconds"][stage] = state["seconds"].get(stage, 0.0) + seconds
        self._modify(change)

    def done(self, stage):
        return stage in self._read()["done"]

    def finish(self, stage):
        def change(state):
            if stage not in state["done"]:
                state["done"].append(stage)
        self._modify(change)

    def save(self, name, obj):
        tmp = self.path(name + ".tmp")
        torch.save(obj, tmp)
        os.replace(tmp, self.path(name))

    def load(self, name):
        path = self.path(name)
        return torch.load(path, weights_only=False) if os.path.exists(path) else None


def grammar_words():
    """Word -> count over every prompt of the grammar (the BPE training corpus)."""
    counts = {}
    for scene in scenes.all_scenes():
        for text in scenes.prompts_for(scene):
            for word in text.replace(",", " ").split():
                counts[word] = counts.get(word, 0) + 1
    return counts


def to_tensor(images):
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def vae_batch(rng, batch):
    """Half grammar scenes, half scenes with their shape slightly moved and resized.

    Returns the images and a per-pixel loss weight: 1 on the background, 5 on the shape, so the
    small share of pixels that carry the shape is learnt early.
    """
    all_scenes = vae_batch.scenes
    images, weights = [], []
    for i in range(batch):
        scene = all_scenes[rng.integers(len(all_scenes))]
        jitter = None
        if i % 2 == 1:
            jitter = (rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08), rng.uniform(0.8, 1.2))
        image, coverage = scenes.render(scene, jitter=jitter, with_coverage=True)
        images.append(image)
        weights.append(1.0 + 4.0 * coverage)
    return to_tensor(images), torch.from_numpy(np.stack(weights))[:, None]


vae_batch.scenes = scenes.all_scenes()


def cosine_lr(step, total, peak, warmup, floor=0.05):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_vae(run, args):
    from diffusers import AutoencoderKL

    torch.manual_seed(args.seed)
    vae = AutoencoderKL(sample_size=scenes.GRAMMAR["image_size"], **VAE_CONFIG)
    # Start the posterior narrow (std e^-3): with the default log-variance of 0 the sampled
    # latents begin as mostly noise and the decoder learns slowly.
    with torch.no_grad():
        vae.quant_conv.bias[VAE_CONFIG["latent_channels"]:] = -6.0
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    step = 0
    checkpoint = run.load("vae_ckpt.pt")
    if checkpoint is not None:
        vae.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = checkpoint["step"]
        log(f"vae: resuming at step {step}")
    vae.train()
    started = time.time()
    last_save = started
    running = None
    while step < args.vae_steps:
        rng = np.random.default_rng([args.seed, 1, step])
        torch.manual_seed(args.seed * 1_000_003 + step)
        x, weight = vae_batch(rng, args.vae_batch)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.vae_steps, args.vae_lr, 50)
        posterior = vae.encode(x).latent_dist
        y = vae.decode(posterior.sample()).sample
        rec = (weight * ((y - x).abs() + (y - x) ** 2)).mean()
        kl = posterior.kl().mean() / (4 * posterior.mean.shape[-1] ** 2)
        loss = rec + args.vae_kl * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        step += 1
        running = rec.item() if running is None else 0.98 * running + 0.02 * rec.item()
        if step % 25 == 0:
            log(f"vae step {step}/{args.vae_steps} rec {running:.4f} kl {kl.item():.2f}")
        if time.time() - last_save > args.save_seconds or step == args.vae_steps:
            run.save("vae_ckpt.pt", {"model": vae.state_dict(), "optimizer": optimizer.state_dict(), "step": step})
            now = time.time()
            run.add_time("vae", now - last_save)
            last_save = now
    run.save("vae_final.pt", {"model": vae.state_dict(), "steps": step})
    run.set(vae_steps=step, vae_batch=args.vae_batch)
    run.finish("vae")


def load_vae(run, scaling_factor=None, fine_tuned_decoder=False):
    from diffusers import AutoencoderKL

    config = dict(VAE_CONFIG, sample_size=scenes.GRAMMAR["image_size"])
    if scaling_factor is not None:
        config["scaling_factor"] = scaling_factor
    vae = AutoencoderKL(**config)
    vae.load_state_dict(run.load("vae_final.pt")["model"])
    if fine_tuned_decoder:
        vae.load_state_dict(run.load("decoder_final.pt")["model"])
    return vae.eval()


def edge_loss(y, x, weight):
    """L1 distance between the images' horizontal and vertical differences (sharp corners, tips)."""
    dx = (y[..., :, 1:] - y[..., :, :-1]) - (x[..., :, 1:] - x[..., :, :-1])
    dy = (y[..., 1:, :] - y[..., :-1, :]) - (x[..., 1:, :] - x[..., :-1, :])
    return (weight[..., :, 1:] * dx.abs()).mean() + (weight[..., 1:, :] * dy.abs()).mean()


def train_decoder(run, args):
    """Fine-tunes the VAE decoder with the encoder frozen, so the latents (and the U-Net trained
    on them) stay valid while small shapes' corners and points sharpen. The decoder sees the
    encoder's mean plus a little noise, as it will see the U-Net's imperfect latents."""
    vae = load_vae(run)
    for p in vae.parameters():
        p.requires_grad_(False)
    trained = [vae.decoder, vae.post_quant_conv]
    parameters = [p for m in trained for p in m.parameters()]
    for p in parameters:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(parameters, lr=args.decoder_lr, weight_decay=0.0)
    latent_std = 1.0 / run.state["scaling_factor"]
    step = 0
    checkpoint = run.load("decoder_ckpt.pt")
    if checkpoint is not None:
        vae.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = checkpoint["step"]
        log(f"decoder: resuming at step {step}")
    vae.decoder.train()
    last_save = time.time()
    running = None
    while step < args.decoder_steps:
        rng = np.random.default_rng([args.seed, 3, step])
        torch.manual_seed(args.seed * 1_000_003 + 7 + step)
        x, weight = vae_batch(rng, args.vae_batch)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.decoder_steps, args.decoder_lr, 50)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean
            z = z + args.decoder_noise * latent_std * torch.randn_like(z)
        y = vae.decode(z).sample
        rec = (weight * ((y - x).abs() + (y - x) ** 2)).mean()
        loss = rec + edge_loss(y, x, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        step += 1
        running = rec.item() if running is None else 0.98 * running + 0.02 * rec.item()
        if step % 25 == 0:
            log(f"decoder step {step}/{args.decoder_steps} rec {running:.4f}")
        if time.time() - last_save > args.save_seconds or step == args.decoder_steps:
            run.save("decoder_ckpt.pt", {"model": vae.state_dict(), "optimizer": optimizer.state_dict(), "step": step})
            now = time.time()
            run.add_time("decoder", now - last_save)
            last_save = now
    run.save("decoder_final.pt", {"model": vae.state_dict(), "steps": step})
    # Reconstruction error of the grammar scenes with the fine-tuned decoder, for the model card.
    vae.eval()
    all_scenes = scenes.all_scenes()
    errors = []
    with torch.no_grad():
        for start in range(0, len(all_scenes), 64):
            x = to_tensor([scenes.render(scene) for scene in all_scenes[start:start + 64]])
            y = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
            errors.append((y - x).abs().mean(dim=(1, 2, 3)) * 127.5)
    mae = torch.cat(errors).mean().item()
    log(f"decoder: mean abs error {mae:.2f}/255")
    run.set(decoder_steps=step, decoder_reconstruction_mae=mae)
    run.finish("decoder")


@torch.no_grad()
def encode_latents(run, args):
    started = time.time()
    vae = load_vae(run)
    all_scenes = scenes.all_scenes()
    means = []
    for start in range(0, len(all_scenes), 64):
        chunk = all_scenes[start:start + 64]
        x = to_tensor([scenes.render(scene) for scene in chunk])
        means.append(vae.encode(x).latent_dist.mean)
    latents = torch.cat(means)
    scaling = 1.0 / latents.std().item()
    # Reconstruction error of the grammar scenes through the VAE, for the model card.
    errors = []
    for start in range(0, len(all_scenes), 64):
        chunk = all_scenes[start:start + 64]
        x = to_tensor([scenes.render(scene) for scene in chunk])
        y = vae.decode(latents[start:start + 64]).sample.clamp(-1, 1)
        errors.append(((y - x).abs().mean(dim=(1, 2, 3)) * 127.5))
    mae = torch.cat(errors).mean().item()
    run.save("latents.pt", {"latents": latents, "scaling_factor": scaling, "scenes": all_scenes})
    run.set(scaling_factor=scaling, latent_mean=latents.mean().item(), vae_reconstruction_mae=mae)
    log(f"latents: {tuple(latents.shape)} std {latents.std().item():.3f} mean {latents.mean().item():.3f} "
        f"scaling {scaling:.4f}, VAE mean abs error {mae:.2f}/255")
    run.add_time("latents", time.time() - started)
    run.finish("latents")


def load_tokenizer(run):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(run.path("tokenizer"))


def text_model(vocab_size, tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TEXT_CONFIG,
    )
    return CLIPTextModel(config)


def unet_model():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(sample_size=scenes.GRAMMAR["image_size"] // 8, **UNET_CONFIG)


class EMA:
    def __init__(self, modules, decay):
        self.decay = decay
        self.shadow = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]

    @torch.no_grad()
    def update(self, modules, step):
        decay = min(self.decay, (1 + step) / (10 + step))
        for shadow, module in zip(self.shadow, modules):
            for key, value in module.state_dict().items():
                if value.dtype.is_floating_point:
                    shadow[key].mul_(decay).add_(value.detach(), alpha=1 - decay)
                else:
                    shadow[key].copy_(value)


def train_unet(run, args):
    from diffusers import DDPMScheduler

    data = run.load("latents.pt")
    latents = data["latents"] * data["scaling_factor"]
    all_scenes = data["scenes"]
    tokenizer = load_tokenizer(run)

    def ids(text):
        return tokenizer(text, padding="max_length", max_length=TOKEN_LENGTH, truncation=True).input_ids

    scene_prompts = [[ids(text) for text in scenes.prompts_for(scene)] for scene in all_scenes]
    empty = ids("")

    torch.manual_seed(args.seed + 2)
    text_encoder = text_model(len(tokenizer), tokenizer)
    unet = unet_model()
    modules = [unet, text_encoder]
    parameters = [p for m in modules for p in m.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=args.unet_lr, weight_decay=0.01)
    ema = EMA(modules, args.ema)
    # v-prediction with zero terminal SNR: at the last timestep the input is pure noise (as when
    # sampling starts) and the target is the clean latent, so layout and colours are learnt from
    # the prompt alone. The loss is unweighted in v (x0 error weighted by SNR + 1).
    noise_schedule = DDPMScheduler(**SCHEDULER_CONFIG)
    step = 0
    checkpoint = run.load("unet_ckpt.pt")
    if checkpoint is not None:
        unet.load_state_dict(checkpoint["unet"])
        text_encoder.load_state_dict(checkpoint["text_encoder"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        ema.shadow = checkpoint["ema"]
        step = checkpoint["step"]
        log(f"unet: resuming at step {step}")
    for m in modules:
        m.train()
    last_save = time.time()
    running = None
    while step < args.unet_steps:
        rng = np.random.default_rng([args.seed, 2, step])
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        picks = rng.integers(len(all_scenes), size=args.unet_batch)
        tokens = []
        for index in picks:
            options = scene_prompts[index]
            tokens.append(empty if rng.random() < args.uncond else options[rng.integers(len(options))])
        tokens = torch.tensor(tokens)
        x0 = latents[torch.from_numpy(picks)]
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, 1000, (args.unet_batch,), generator=generator)
        xt = noise_schedule.add_noise(x0, noise, t)
        target = noise_schedule.get_velocity(x0, noise, t)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.unet_steps, args.unet_lr, 200, floor=0.1)
        hidden = text_encoder(tokens).last_hidden_state
        prediction = unet(xt, t, hidden).sample
        loss = F.mse_loss(prediction, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        step += 1
        ema.update(modules, step)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0:
            log(f"unet step {step}/{args.unet_steps} loss {running:.4f}")
        if time.time() - last_save > args.save_seconds or step == args.unet_steps:
            run.save("unet_ckpt.pt", {
                "unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(),
                "optimizer": optimizer.state_dict(), "ema": ema.shadow, "step": step})
            now = time.time()
            run.add_time("unet", now - last_save)
            last_save = now
    run.set(unet_steps=step, unet_batch=args.unet_batch)
    run.finish("unet")


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())


def export(run, out, checkpoint_name="unet_ckpt.pt", use_ema=True):
    """Writes the diffusers folder (float16 weights) and scene_grammar.json; returns parameter counts."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    started = time.time()
    tokenizer = load_tokenizer(run)
    checkpoint = run.load(checkpoint_name)
    text_encoder = text_model(len(tokenizer), tokenizer)
    unet = unet_model()
    if use_ema:
        unet.load_state_dict(checkpoint["ema"][0])
        text_encoder.load_state_dict(checkpoint["ema"][1])
    else:
        unet.load_state_dict(checkpoint["unet"])
        text_encoder.load_state_dict(checkpoint["text_encoder"])
    vae = load_vae(run, scaling_factor=run.state["scaling_factor"], fine_tuned_decoder=run.done("decoder"))
    scheduler = DPMSolverMultistepScheduler(**SAMPLER_CONFIG)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False)
    pipe.to(torch.float16)
    os.makedirs(out, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    with open(os.path.join(out, "scene_grammar.json"), "w") as f:
        json.dump(scenes.GRAMMAR, f, indent=2)
        f.write("\n")
    # Kiln opens the folder with these settings where a request leaves them to the model.
    with open(os.path.join(out, "generation_defaults.json"), "w") as f:
        json.dump({"num_inference_steps": RECOMMENDED["steps"], "guidance_scale": RECOMMENDED["guidance"]}, f, indent=2)
        f.write("\n")
    counts = {
        "text_encoder": parameter_count(text_encoder),
        "unet": parameter_count(unet),
        "vae": parameter_count(vae),
        "vae_encoder": parameter_count(vae.encoder) + parameter_count(vae.quant_conv),
        "vae_decoder": parameter_count(vae.decoder) + parameter_count(vae.post_quant_conv),
    }
    run.set(parameters=counts)
    run.add_time("export", time.time() - started)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT, help="the diffusers folder to write")
    parser.add_argument("--work", default="/work/default-model-runs/run", help="checkpoints and caches")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 2 thrash when another job holds one of the two cores")
    parser.add_argument("--vae-steps", type=int, default=4000)
    parser.add_argument("--vae-batch", type=int, default=8)
    parser.add_argument("--vae-lr", type=float, default=1e-3)
    parser.add_argument("--vae-kl", type=float, default=1e-5)
    parser.add_argument("--decoder-steps", type=int, default=6000)
    parser.add_argument("--decoder-lr", type=float, default=5e-4)
    parser.add_argument("--decoder-noise", type=float, default=0.05,
                        help="latent noise during decoder fine-tuning, in latent standard deviations")
    parser.add_argument("--unet-steps", type=int, default=4000)
    parser.add_argument("--unet-batch", type=int, default=32)
    parser.add_argument("--unet-lr", type=float, default=6e-4)
    parser.add_argument("--uncond", type=float, default=0.1, help="fraction of empty prompts")
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--save-seconds", type=float, default=120.0)
    parser.add_argument("--stop-after", choices=["tokenizer", "vae", "latents", "unet", "decoder", "export"])
    parser.add_argument("--stage", choices=["decoder"],
                        help="run only this stage (its inputs must exist), e.g. beside the U-Net stage")
    parser.add_argument("--skip-evaluation", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    run = Run(args.work)
    run.set(arguments={k: v for k, v in vars(args).items() if k not in ("out", "work", "stage")})

    run.set(torch_version=torch.__version__)
    if not run.done("tokenizer"):
        vocabulary, merges = clip_vocab.write_tokenizer(
            run.path("tokenizer"), grammar_words(), model_max_length=TOKEN_LENGTH)
        prompts = [text for scene in scenes.all_scenes() for text in scenes.prompts_for(scene)]
        clip_vocab.check_tokenizer(run.path("tokenizer"), prompts, grammar_words())
        run.set(vocabulary_size=len(vocabulary), merge_count=len(merges))
        run.finish("tokenizer")
    if args.stop_after == "tokenizer":
        return
    if not run.done("vae"):
        train_vae(run, args)
    if args.stop_after == "vae":
        return
    if not run.done("latents"):
        encode_latents(run, args)
    if args.stop_after == "latents":
        return
    if args.stage == "decoder":
        if not run.done("decoder"):
            train_decoder(run, args)
        return
    if not run.done("unet"):
        train_unet(run, args)
    if args.stop_after == "unet":
        return
    if not run.done("decoder"):
        train_decoder(run, args)
    if args.stop_after == "decoder":
        return
    export(run, args.out)
    log(f"exported {args.out}")
    if args.stop_after == "export" or args.skip_evaluation:
        return
    import evaluate
    import model_card

    started = time.time()
    sheets = os.path.dirname(args.work.rstrip("/"))
    results = evaluate.evaluate(args.out, sheets, threads=args.threads)
    results_f16 = evaluate.evaluate(args.out, sheets, dtype="float16", sheet_name="evaluation_sheet_f16.png",
                                    threads=args.threads)
    run.add_time("evaluate", time.time() - started)
    run.set(evaluation=results, evaluation_f16=results_f16)
    model_card.write(args.out, run.state, dict(
        vae=VAE_CONFIG, unet=UNET_CONFIG, text=TEXT_CONFIG, sampler=SAMPLER_CONFIG, recommended=RECOMMENDED))
    log("model card written")


if __name__ == "__main__":
    main()
