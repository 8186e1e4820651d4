#!/usr/bin/env python3
"""Writes the seed corpora Fuzz/Corpus/<target>/ from Kiln's own test fixtures and built-in model,
cut down to a few kilobytes each, plus inputs made here for what no fixture has (a LoRA whose
modules land on kiln-shapes, a PNG with an A1111 infotext). Standard library only.

Rerun from the repository root after a parser learns a new file feature:
    python3 Fuzz/make-seeds.py
scripts/fuzz.sh only reads these folders: what libFuzzer finds stays under $KILN_FUZZ_OUT.
"""
import json
import shutil
import struct
import zlib
from pathlib import Path

root = Path(__file__).resolve().parent.parent
corpus = root / "Fuzz" / "Corpus"
shapes = root / "Sources" / "KilnDefaultModel" / "Resources" / "kiln-shapes"
models_fixtures = root / "Tests" / "KilnModelsTests" / "Fixtures"
pipelines_fixtures = root / "Tests" / "KilnPipelinesTests" / "Fixtures"
separator = b"\n--kiln-fuzz-file--\n"


def write(target, name, data):
    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def joined(*parts):
    return separator.join(part if isinstance(part, bytes) else part.encode() for part in parts)


def safetensors(tensors, metadata=None):
    """tensors: (name, dtype, shape, raw bytes) in order."""
    header, body = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def floats(count, dtype="F32"):
    values = [((index * 37) % 11 - 5) / 8 for index in range(count)]
    if dtype == "F32":
        return struct.pack(f"<{count}f", *values)
    return struct.pack(f"<{count}e", *values)


def png(width, height, colour_type, rows, text_chunks=()):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + row for row in rows)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
    for kind, payload in text_chunks:
        data += chunk(kind, payload)
    return data + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def reset():
    shutil.rmtree(corpus, ignore_errors=True)


def safetensors_seeds():
    write("safetensors", "mixed", safetensors([
        ("weight", "F32", [2, 3], floats(6)), ("half", "F16", [4], floats(4, "F16")),
        ("brain", "BF16", [2, 2], b"\x80\x3f\x00\x40\x00\xc0\x80\x3f"), ("ids", "I64", [3], struct.pack("<3q", 0, 7, -2)),
        ("small", "I32", [2], struct.pack("<2i", 1, -1)), ("double", "F64", [1], struct.pack("<d", 0.5)),
        ("eight", "F8_E4M3", [4], b"\x38\x40\xb8\x7e"), ("wide", "F8_E5M2", [2], b"\x3c\x7c"), ("flags", "BOOL", [2], b"\x00\x01"),
        ("empty", "F32", [0, 4], b""), ("scalar", "F32", [], floats(1)),
    ], metadata={"format": "pt", "note": "kiln fuzz seed"}))
    write("safetensors", "single", safetensors([("conv_in.weight", "F16", [2, 1, 1, 1], floats(2, "F16"))]))
    write("safetensors", "empty-header", safetensors([]))


def index_seeds():
    first = safetensors([("conv_in.weight", "F32", [2, 2], floats(4)), ("conv_in.bias", "F32", [2], floats(2))])
    second = safetensors([("conv_out.weight", "F16", [3], floats(3, "F16"))])
    index = {"metadata": {"total_size": 30}, "weight_map": {
        "conv_in.weight": "diffusion_pytorch_model-00001-of-00002.safetensors",
        "conv_in.bias": "diffusion_pytorch_model-00001-of-00002.safetensors",
        "conv_out.weight": "diffusion_pytorch_model-00002-of-00002.safetensors"}}
    write("safetensors-index", "two-shards", joined(json.dumps(index, indent=2), first, second))
    one = dict(index, weight_map={"conv_in.weight": "diffusion_pytorch_model-00001-of-00002.safetensors"})
    write("safetensors-index", "one-shard", joined(json.dumps(one), safetensors([("conv_in.weight", "F32", [1], floats(1))])))


def png_seeds():
    for path in sorted((root / "Tests" / "KilnImageTests" / "Fixtures" / "flavours").glob("*.png")):
        write("png", path.stem, path.read_bytes())
    infotext = b"parameters\x00a red fox, (snow:1.2)\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 4x2"
    international = b"Description\x00\x00\x00en\x00Beschreibung\x00" + "Füchse im Schnee 🦊".encode()
    compressed = b"Comment\x00\x00" + zlib.compress(b"compressed comment")
    rows = [bytes(range(x * 3, x * 3 + 12)) for x in range(2)]
    write("png", "infotext", png(4, 2, 2, rows, [(b"tEXt", infotext), (b"iTXt", international), (b"zTXt", compressed)]))


def model_config_seeds():
    write("model-config", "kiln-shapes-model-index", (shapes / "model_index.json").read_bytes())
    write("model-config", "kiln-shapes-generation-defaults", (shapes / "generation_defaults.json").read_bytes())
    for component in ["unet", "vae", "text_encoder"]:
        write("model-config", f"kiln-shapes-{component}", (shapes / component / "config.json").read_bytes())
    fixtures = {
        "sd3-transformer": pipelines_fixtures / "sd3/model/transformer/config.json",
        "sd3-model-index": pipelines_fixtures / "sd3/model/model_index.json",
        "sd3-t5": pipelines_fixtures / "sd3/model/text_encoder_3/config.json",
        "flux-transformer": pipelines_fixtures / "flux/dev/transformer/config.json",
        "taesd": pipelines_fixtures / "taesd/taesd/config.json",
        "dit-transformer": models_fixtures / "dit/diffusers/transformer/config.json",
        "dit-model-index": models_fixtures / "dit/diffusers/model_index.json",
        "sdxl-model-index": models_fixtures / "sd/sdxl/diffusers/model_index.json",
        "sdxl-unet": models_fixtures / "sd/sdxl/diffusers/unet/config.json",
    }
    for name, path in fixtures.items():
        if path.exists():
            write("model-config", name, path.read_bytes())


def regression_seeds():
    """What fuzzing found (see RELIABILITY.md), so that every smoke runs it again first."""
    unet = json.loads((shapes / "unet" / "config.json").read_text())
    write("model-config", "found-unet-no-blocks", json.dumps(dict(unet, block_out_channels=[], down_block_types=[], up_block_types=[])))
    write("model-config", "found-unet-zero-heads", json.dumps(dict(unet, attention_head_dim=0)))
    write("model-config", "found-unet-minimum-channels", json.dumps(dict(unet, attention_head_dim=-1, block_out_channels=[-(1 << 63)] * 4)))
    write("model-config", "found-transformer-width-overflow", json.dumps(
        {"num_attention_heads": 1 << 40, "attention_head_dim": 1 << 40, "num_embeds_ada_norm": 1000, "sample_size": 8,
         "patch_size": 2, "caption_projection_dim": 64, "pos_embed_max_size": 8, "axes_dims_rope": [(1 << 63) - 2, 2]}))
    write("png", "found-itxt-longer-than-file", (root / "Tests/KilnImageTests/Fixtures/fuzz/itxt_longer_than_file.png").read_bytes())
    write("scheduler-config", "found-invalid-utf8",
          (root / "Tests/KilnSamplingTests/Fixtures/fuzz/scheduler_config_invalid_utf8.json").read_bytes())
    write("scheduler-config", "found-repeated-timesteps", '{"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 2, '
          '"timestep_spacing": "trailing", "prediction_type": "v_prediction"}')
    write("safetensors-index", "found-empty-weight-map", '{"metadata": {"total_size": 30}, "weight_map": {}}')
    write("scheduler-config", "found-many-train-timesteps", '{"_class_name": "DPMSolverMultistepScheduler", '
          '"num_train_timesteps": 1000000000000, "use_karras_sigmas": true}')


def scheduler_seeds():
    seen = set()
    paths = [shapes / "scheduler" / "scheduler_config.json"] + sorted(root.glob("Tests/*/Fixtures/**/scheduler_config.json"))
    for path in paths:
        data = path.read_bytes()
        if data in seen:
            continue
        seen.add(data)
        write("scheduler-config", f"scheduler-{len(seen)}", data)
    write("scheduler-config", "json5-infinity", '{"_class_name": "DPMSolverMultistepScheduler", "num_train_timesteps": 1000, '
          '"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "lambda_min_clipped": -Infinity, '
          '"use_karras_sigmas": true, "algorithm_type": "dpmsolver++", "solver_order": 2, // a comment\n}')
    choices = ["dpm++2m karras 8", "euler_a default 5", "euler exponential 6", "heun default 3", "lcm default 4",
               "flow_euler default 6", "ddim default 5", "pndm default 7", "ddpm default 3"]
    for number, choice in enumerate(choices):
        config = paths[number % len(paths)].read_bytes()
        write("scheduler-config", f"choice-{number}", joined(config, choice))
    write("scheduler-config", "trained-betas", '{"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 4, '
          '"trained_betas": [0.1, 0.2, 0.3, 0.4], "timestep_spacing": "trailing", "prediction_type": "v_prediction"}')


def clip_seeds():
    folder = shapes / "tokenizer"
    files = [(folder / name).read_bytes() for name in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]]
    write("clip-tokenizer", "kiln-shapes", joined(*files))
    write("clip-tokenizer", "kiln-shapes-no-configs", joined(*files[:2]))


def trimmed_tokenizer_json(path, pieces):
    tokenizer = json.loads(path.read_text())
    tokenizer["model"]["vocab"] = tokenizer["model"]["vocab"][:pieces]
    return json.dumps(tokenizer, ensure_ascii=False)


def tokenizer_json_seeds():
    t5 = models_fixtures / "t5_tokenizer"
    configs = [(t5 / "tokenizer" / name).read_bytes() for name in ["tokenizer_config.json", "special_tokens_map.json"]]
    write("tokenizer-json", "byte-fallback", joined(trimmed_tokenizer_json(t5 / "byte_fallback" / "tokenizer.json", 400), *configs))
    nmt = models_fixtures / "tokenizer_components" / "t5_nmt" / "tokenizer.json"
    text = trimmed_tokenizer_json(nmt, 300)
    if len(text) < 64_000:
        write("tokenizer-json", "nmt", text)


def protobuf_fields(data):
    """(field number, wire type, raw bytes of the whole field) of one protobuf message."""
    fields, offset = [], 0
    def varint(offset):
        value, shift = 0, 0
        while True:
            byte = data[offset]
            value |= (byte & 0x7F) << shift
            offset += 1
            shift += 7
            if byte < 0x80:
                return value, offset
    while offset < len(data):
        start = offset
        key, offset = varint(offset)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, offset = varint(offset)
        elif wire == 1:
            offset += 8
        elif wire == 2:
            length, offset = varint(offset)
            offset += length
        elif wire == 5:
            offset += 4
        else:
            raise ValueError(f"wire type {wire}")
        fields.append((number, wire, data[start:offset]))
    return fields


def varint(value):
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def length_delimited(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def identity_normalizer(field):
    """A NormalizerSpec field (3) without its precompiled map, named `identity`."""
    payload = field[2][len(varint(3 << 3 | 2)):]
    inner = protobuf_fields(strip_length(payload))
    kept = [length_delimited(1, b"identity")] + [item[2] for item in inner if item[0] not in (1, 2)]
    return (3, 2, length_delimited(3, b"".join(kept)))


def strip_length(payload):
    offset = 0
    while payload[offset] & 0x80:
        offset += 1
    return payload[offset + 1:]


def sentencepiece_seeds():
    t5 = models_fixtures / "t5_tokenizer" / "tokenizer"
    fields = protobuf_fields((t5 / "spiece.model").read_bytes())
    pieces = [field for field in fields if field[0] == 1]
    rest = [field for field in fields if field[0] != 1]
    # The precompiled NFKC map is most of the file (240 kB); without it the spec is the identity.
    rest = [identity_normalizer(field) if field[0] == 3 else field for field in rest]
    model = b"".join(field[2] for field in pieces[:300]) + b"".join(field[2] for field in rest)
    configs = [(t5 / name).read_bytes() for name in ["tokenizer_config.json", "special_tokens_map.json"]]
    write("sentencepiece", "t5-300-pieces", joined(model, *configs))
    write("sentencepiece", "t5-300-pieces-alone", model)


def lora_seeds():
    unet = "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    dotted = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    text = "text_model_encoder_layers_0_self_attn_q_proj"
    rank = 4
    write("lora", "kohya", safetensors([
        (f"lora_unet_{unet}.lora_down.weight", "F16", [rank, 64], floats(rank * 64, "F16")),
        (f"lora_unet_{unet}.lora_up.weight", "F16", [64, rank], floats(rank * 64, "F16")),
        (f"lora_unet_{unet}.alpha", "F32", [], struct.pack("<f", 2)),
        ("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "F32", [rank, 64, 1, 1], floats(rank * 64)),
        ("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", "F32", [64, rank, 1, 1], floats(rank * 64)),
        (f"lora_te_{text}.lora_down.weight", "F32", [rank, 128], floats(rank * 128)),
        (f"lora_te_{text}.lora_up.weight", "F32", [128, rank], floats(rank * 128)),
    ], metadata={"ss_network_dim": "4", "ss_network_alpha": "2"}))
    metadata = {"lora_adapter_metadata": json.dumps({"unet.lora_alpha": 8, "unet.r": 4, "unet.use_rslora": False,
                                                      "unet.alpha_pattern": {"to_q": 2}})}
    write("lora", "peft", safetensors([
        (f"unet.{dotted}.lora_A.weight", "F32", [rank, 64], floats(rank * 64)),
        (f"unet.{dotted}.lora_B.weight", "F32", [64, rank], floats(rank * 64)),
    ], metadata=metadata))
    write("lora", "loha", safetensors([
        (f"lora_unet_{unet}.hada_w1_a", "F32", [64, 2], floats(128)), (f"lora_unet_{unet}.hada_w1_b", "F32", [2, 64], floats(128)),
        (f"lora_unet_{unet}.hada_w2_a", "F32", [64, 2], floats(128)), (f"lora_unet_{unet}.hada_w2_b", "F32", [2, 64], floats(128)),
        (f"lora_unet_{unet}.alpha", "F32", [], struct.pack("<f", 1)),
    ]))
    write("lora", "lokr", safetensors([
        (f"lora_unet_{unet}.lokr_w1", "F32", [8, 8], floats(64)),
        (f"lora_unet_{unet}.lokr_w2_a", "F32", [8, 2], floats(16)), (f"lora_unet_{unet}.lokr_w2_b", "F32", [2, 8], floats(16)),
    ]))
    write("lora", "flux-xlabs", (pipelines_fixtures / "lora" / "flux_xlabs.safetensors").read_bytes())


def text_seeds():
    write("render-manifest", "jsonl", '# a comment\n'
          '{"id": "fox", "prompt": "a red fox", "seed": {"range": [0, 3]}, "sampler": ["euler", "dpm++2m"]}\n'
          '{"prompt": ["a lighthouse", "a boat"], "steps": [20, 30], "cfg_scale": 6.5, "width": 512, "height": 384, '
          '"scheduler": "karras", "batch_count": 2, "negative_prompt": "blurry", "loras": [{"path": "loras/a.safetensors", "weight": 0.8}]}\n'
          '{"id": "sea", "prompt": "a sea", "init_image": "inputs/sea.png", "strength": 0.6, "mask": "inputs/mask.png"}\n'
          '{"class_label": 207, "seed": 1, "model": "models/dit"}\n')
    write("render-manifest", "plain", "a red fox in the snow\n\n# skipped\na lighthouse at night, (stormy:1.3)\n")
    write("a1111-request", "txt2img", json.dumps({
        "prompt": "a red fox, (snow:1.2) <lora:fox:0.8> BREAK winter", "negative_prompt": "blurry", "styles": [], "seed": 42,
        "subseed": -1, "subseed_strength": 0, "sampler_name": "DPM++ 2M", "scheduler": "Karras", "batch_size": 2, "n_iter": 1,
        "steps": 20, "cfg_scale": 7, "width": 512, "height": 512, "restore_faces": False, "tiling": False, "eta": 0,
        "override_settings": {"sd_model_checkpoint": "model"}, "override_settings_restore_afterwards": True,
        "send_images": True, "save_images": False, "enable_hr": False}))
    tiny = png(2, 2, 0, [b"\x00\xff", b"\xff\x00"])
    import base64
    encoded = base64.b64encode(tiny).decode()
    write("a1111-request", "img2img", json.dumps({
        "prompt": "a lighthouse", "init_images": ["data:image/png;base64," + encoded], "mask": encoded, "denoising_strength": 0.6,
        "resize_mode": 0, "mask_blur": 4, "inpainting_fill": 1, "inpaint_full_res": False, "inpainting_mask_invert": 0,
        "sampler_index": "Euler a", "steps": 10, "width": 64, "height": 64}))
    write("openai-request", "b64", json.dumps({"prompt": "a lighthouse", "n": 2, "size": "512x768", "response_format": "b64_json",
                                              "model": "dall-e-3", "quality": "hd", "style": "vivid", "user": "fuzz", "seed": 3,
                                              "steps": 20, "guidance_scale": 5.5, "negative_prompt": "fog", "output_format": "png"}))
    write("openai-request", "url", json.dumps({"prompt": "a fox", "size": "auto", "response_format": "url", "model": "model"}))
    write("job-request", "prompt", json.dumps({
        "prompt": "a lighthouse", "negative_prompt": "blurry", "width": 512, "height": 512, "steps": 25, "guidance_scale": 7.5,
        "sampler": "dpm++2m", "scheduler": "karras", "seed": 42, "batch_count": 1, "guidance_rescale": 0.7,
        "max_sequence_length": 256, "without_t5": False, "model": "model"}))
    write("job-request", "classes", json.dumps({"class_labels": [207, 360], "steps": 10, "seed": 0, "sampler": "ddim"}))
    write("job-request", "img2img", json.dumps({"prompt": "a sea", "init_image": encoded, "mask": encoded, "strength": 0.5}))
    prompts = {
        "emphasis": "a (red:1.3) fox, ((snow)), [blurry], (forest:0.5) \\(escaped\\) BREAK night sky",
        "lora": "<lora:fox:0.8> a fox <lyco:style:1:te=0.5> <lora:bad:x> <hypernet:a:1>",
        "nested": "((a [b (c:1.1) d] e:1.2) f) [[g]] (h:-1) (i:1e3) AND j",
        "long": ", ".join(f"word{index} (detail{index}:1.{index % 9})" for index in range(60)),
    }
    for name, text in prompts.items():
        write("a1111-prompt", name, text)


reset()
safetensors_seeds()
index_seeds()
png_seeds()
model_config_seeds()
scheduler_seeds()
clip_seeds()
tokenizer_json_seeds()
sentencepiece_seeds()
lora_seeds()
text_seeds()
regression_seeds()
