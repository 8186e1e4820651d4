#!/usr/bin/env python3
"""Assembles one of the tiny random-weight test models into a loadable diffusers folder, for
tests that run Kiln from outside Swift (real HTTP clients, the C example, Slurm jobs).

The committed fixtures leave out the CLIP tokenizer's vocab.json and merges.txt (they follow from
the real CLIP merges in Tests/KilnModelsTests/Fixtures/clip/merges.txt); this writes them and
copies every other file, so the folder stands alone (no links into the checkout).

    python3 scripts/tiny-model.py OUT [--family sd1|sd2|sdxl]

Needs only the Python standard library.
"""
import argparse
import json
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "KilnModelsTests", "Fixtures")


def clip_vocabulary(merges_path):
    """CLIP's vocab.json from its merges: byte symbols, the same with </w>, merges, specials."""
    symbols = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = symbols[:]
    extra = 0
    for byte in range(256):
        if byte not in symbols:
            symbols.append(byte)
            codes.append(256 + extra)
            extra += 1
    characters = [chr(code) for code in codes]
    vocabulary = characters + [character + "</w>" for character in characters]
    with open(merges_path, encoding="utf-8") as file:
        lines = file.read().split("\n")[1:]
    vocabulary += ["".join(line.split()) for line in lines if line.strip()]
    vocabulary += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(vocabulary)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--family", default="sd1", choices=["sd1", "sd2", "sdxl"])
    arguments = parser.parse_args()
    source = os.path.join(FIXTURES, "sd", arguments.family, "diffusers")
    merges = os.path.join(FIXTURES, "clip", "merges.txt")
    if os.path.exists(arguments.out):
        shutil.rmtree(arguments.out)
    shutil.copytree(source, arguments.out)
    vocabulary = clip_vocabulary(merges)
    for entry in os.listdir(arguments.out):
        if entry.startswith("tokenizer"):
            folder = os.path.join(arguments.out, entry)
            shutil.copy(merges, os.path.join(folder, "merges.txt"))
            with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as file:
                json.dump(vocabulary, file, ensure_ascii=False)
    print(arguments.out)


if __name__ == "__main__":
    main()
