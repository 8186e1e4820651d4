"""Write tiny random-weight T5 encoder fixtures for Kiln's T5EncoderModel tests.

Rerun from the repository root (nothing is downloaded; no model hub is contacted):

    python3 -m venv .venv
    .venv/bin/pip install -r Tests/Fixtures/requirements.txt
    .venv/bin/python Tests/Fixtures/generate_t5_fixtures.py          # rewrite the fixtures
    .venv/bin/python Tests/Fixtures/generate_t5_fixtures.py --check  # compare with the committed ones

Pins (Tests/Fixtures/requirements.txt): torch==2.13.0, numpy==2.4.6, safetensors==0.8.0,
transformers==4.57.6.

The model is transformers' T5EncoderModel as SD3/SD3.5 (text_encoder_3) and FLUX
(text_encoder_2) call it: `text_encoder(input_ids)[0]`, no attention mask. Each configuration
below is built from a T5Config with fixed seeds, its weights perturbed (so norm scales are not
all 1) and rounded to float16-representable values (so float16 and float32 copies of a weight
hold the same numbers and the float32 records apply to both), then saved with
`save_pretrained(max_shard_size=...)` so the folder is sharded with a
`model.safetensors.index.json`, as the real text_encoder_3 folder is.

Output: Tests/KilnModelsTests/Fixtures/t5/
  <name>/config.json, model-0000i-of-0000n.safetensors, model.safetensors.index.json
  records.safetensors   per configuration `<name>.ids_<L>` (int32 [B, L]) and
                        `<name>.last_hidden_state_<L>` (float32 [B, L, d_model]) for L = 7 and 77;
                        `buckets.relative_position` (int32, -600..600) and
                        `buckets.<num_buckets>_<max_distance>` (int32): T5Attention's bidirectional
                        bucket of each relative position (memory - query).

Configurations:
  gated_gelu   T5 v1.1 (gated-gelu = gelu_new(x wi_0) * (x wi_1), as SD3/FLUX's T5-XXL);
               max_distance 20, so sequences of 77 reach the last bucket.
  relu         original T5 (DenseReluDense with one `wi`), 8 buckets, max_distance 12.
  odd_heads    3 heads of d_kv 10 over d_model 24 (inner width 30 != d_model), 3 layers.
  large_activations  gated-gelu with block 0's `wo` scaled so the residual stream passes
               float16's largest value (65504) while float32 stays finite: the float16 path
               must keep the residual stream in float32 (asserted below).

Deterministic: fixed seeds; every .safetensors file is rewritten with tensors and metadata in
sorted order, so rerunning writes identical bytes.
"""

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import T5Config, T5EncoderModel  # noqa: E402
from transformers.models.t5.modeling_t5 import T5Attention  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "t5"
SIZE_BUDGET = 1_000_000
PINS = {"torch": "2.13.0", "transformers": "4.57.6", "numpy": "2.4.6"}
LENGTHS = (7, 77)

CONFIGURATIONS = {
    "gated_gelu": dict(vocab_size=128, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                       relative_attention_num_buckets=32, relative_attention_max_distance=20,
                       feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6),
    "relu": dict(vocab_size=96, d_model=24, d_kv=6, d_ff=40, num_layers=2, num_heads=4,
                 relative_attention_num_buckets=8, relative_attention_max_distance=12,
                 feed_forward_proj="relu", layer_norm_epsilon=1e-6),
    "odd_heads": dict(vocab_size=80, d_model=24, d_kv=10, d_ff=36, num_layers=3, num_heads=3,
                      relative_attention_num_buckets=16, relative_attention_max_distance=10,
                      feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-5),
    "large_activations": dict(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                              relative_attention_num_buckets=32, relative_attention_max_distance=20,
                              feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6),
}
# Bucket tables recorded besides each configuration's own: T5-XXL's (32, 128).
EXTRA_BUCKETS = ((32, 128),)
FLOAT16_MAX = 65504.0


def write_safetensors(path, tensors, metadata=None):
    """A safetensors file with tensors and metadata in sorted order (stable bytes)."""
    dtypes = {torch.float32: "F32", torch.float16: "F16", torch.int32: "I32"}
    header = {}
    if metadata:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def normalise_safetensors_tree(root):
    from safetensors import safe_open

    for path in sorted(root.rglob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        write_safetensors(path, tensors, metadata)


def build(name, index):
    torch.manual_seed(1000 + index)
    config = T5Config(**CONFIGURATIONS[name], dropout_rate=0.0, is_encoder_decoder=False, use_cache=False)
    model = T5EncoderModel(config).eval()
    generator = torch.Generator().manual_seed(2000 + index)
    with torch.no_grad():
        for key, parameter in model.named_parameters():
            if "layer_norm" in key:
                # Norm scales start at 1: move them so a missing or misplaced scale shows.
                parameter.copy_(1 + 0.25 * torch.randn(parameter.shape, generator=generator))
        if name == "large_activations":
            model.encoder.block[0].layer[1].DenseReluDense.wo.weight.mul_(40000.0)
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    return model


def ids_for(name, index, length, vocabulary):
    generator = torch.Generator().manual_seed(3000 + 10 * index + length)
    batch = 2 if length == 7 else 1
    ids = torch.randint(0, vocabulary, (batch, length), generator=generator)
    ids[:, -1] = 1  # T5's </s>, as the tokenizer ends every prompt
    return ids


def buckets(relative_position, num_buckets, max_distance):
    return T5Attention._relative_position_bucket(relative_position, bidirectional=True, num_buckets=num_buckets,
                                                 max_distance=max_distance).to(torch.int32)


def generate(out_root):
    torch.set_grad_enabled(False)
    out_root.mkdir(parents=True)
    records = {}
    relative = torch.arange(-600, 601)
    records["buckets.relative_position"] = relative.to(torch.int32)
    tables = set(EXTRA_BUCKETS)
    for index, name in enumerate(CONFIGURATIONS):
        model = build(name, index)
        config = model.config
        tables.add((config.relative_attention_num_buckets, config.relative_attention_max_distance))
        model.save_pretrained(str(out_root / name), safe_serialization=True, max_shard_size="24KB")
        for length in LENGTHS:
            ids = ids_for(name, index, length, config.vocab_size)
            output = model(input_ids=ids, output_hidden_states=True)
            if name == "large_activations":
                largest = max(float(h.abs().max()) for h in output.hidden_states)
                if not largest > FLOAT16_MAX:
                    sys.exit(f"large_activations: largest hidden value {largest} does not pass float16's range")
            records[f"{name}.ids_{length}"] = ids.to(torch.int32)
            records[f"{name}.last_hidden_state_{length}"] = output[0].float()
    for num_buckets, max_distance in sorted(tables):
        records[f"buckets.{num_buckets}_{max_distance}"] = buckets(relative, num_buckets, max_distance)
    write_safetensors(out_root / "records.safetensors", records,
                      {"generator": "Tests/Fixtures/generate_t5_fixtures.py",
                       "transformers": transformers.__version__.split("+")[0], "torch": torch.__version__.split("+")[0]})
    normalise_safetensors_tree(out_root)


def tree_size(root):
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="generate into a temporary folder and compare with the committed tree")
    args = parser.parse_args()
    for module, version in (("torch", torch.__version__), ("transformers", transformers.__version__),
                            ("numpy", np.__version__)):
        if version.split("+")[0] != PINS[module]:
            print(f"warning: {module} {version} is not the pinned {PINS[module]}", file=sys.stderr)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "t5"
            generate(out)
            generated = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
            committed = {p.relative_to(OUT_DIR) for p in OUT_DIR.rglob("*") if p.is_file()}
            diffs = sorted(str(p) for p in generated ^ committed)
            diffs += sorted(str(p) for p in generated & committed if (out / p).read_bytes() != (OUT_DIR / p).read_bytes())
            if diffs:
                sys.exit("differs from the committed fixtures: " + ", ".join(diffs))
            print("fixtures are up to date")
        return
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    generate(OUT_DIR)
    size = tree_size(OUT_DIR)
    print(f"wrote {OUT_DIR.relative_to(REPO)}: {size} bytes")
    if size > SIZE_BUDGET:
        sys.exit(f"fixtures are {size} bytes, over the {SIZE_BUDGET} budget")


if __name__ == "__main__":
    main()
