"""Write CLIP tokenizer reference ids for Kiln's CLIPTokenizer tests.

Rerun from the repository root:

    python3 -m venv .venv
    .venv/bin/pip install transformers==4.57.6
    .venv/bin/pip uninstall -y ftfy      # must NOT be installed, see below
    .venv/bin/python Tests/Fixtures/generate_tokenizer_fixtures.py

transformers is pinned to 4.57.6, the last release that still ships the slow
(pure Python) `CLIPTokenizer`; from 5.0 on, `CLIPTokenizer` is the Rust-backed
one, which normalises text differently (no control-character removal, no CJK
spacing). The script refuses to run when `ftfy` is importable, because the slow
tokenizer then replaces its BasicTokenizer with `ftfy.fix_text`, which is the
behaviour Kiln does not reproduce.

Inputs: Tests/KilnModelsTests/Fixtures/clip/merges.txt (the real CLIP merges).
A vocab.json is built from those merges the way OpenAI's CLIP release builds
it (256 byte symbols in bytes_to_unicode order, the same with `</w>`, one entry
per merge, then `<|startoftext|>` and `<|endoftext|>`) into a temporary folder;
it is not committed.

Output: Tests/KilnModelsTests/Fixtures/clip/token_ids.json, a JSON object with
`transformers` (version) and `cases`: a list of objects with
  text                 the prompt
  ids                  tokenizer(text).input_ids (BOS + tokens + EOS)
  padded_ids           tokenizer(text, padding="max_length", max_length=77,
                       truncation=True).input_ids
  attention_mask       the attention mask of that padded call
  bang_ids, bang_padded_ids
                       the same two calls with pad_token="!" (SD2 / SDXL's
                       second tokenizer), which also makes "!" an added token
Output is deterministic: rerunning rewrites an identical file.
"""

import importlib.util
import json
import sys
import tempfile
from pathlib import Path

if importlib.util.find_spec("ftfy") is not None:
    sys.exit("ftfy is installed: uninstall it, the fixtures describe CLIPTokenizer without ftfy")

import transformers  # noqa: E402
from transformers import CLIPTokenizer  # noqa: E402

PINNED_TRANSFORMERS = "4.57.6"
FIXTURE_DIR = Path(__file__).resolve().parents[1] / "KilnModelsTests" / "Fixtures" / "clip"
MAX_LENGTH = 77
# transformers reads only this many merges (CLIP's 49152-entry BPE vocabulary
# minus the 256 byte symbols and the two special tokens).
MERGE_COUNT = 49152 - 256 - 2


def byte_symbols():
    """The 256 printable stand-ins for bytes, in CLIP's bytes_to_unicode order."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\u00a1"), ord("\u00ac") + 1))
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    )
    order = list(printable)
    symbols = [chr(b) for b in printable]
    shift = 0
    for byte in range(256):
        if byte not in printable:
            order.append(byte)
            symbols.append(chr(256 + shift))
            shift += 1
    return symbols


def build_vocabulary(merges_path):
    lines = merges_path.read_text(encoding="utf-8").strip().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    assert len(merges) == MERGE_COUNT and all(len(m) == 2 for m in merges)
    tokens = byte_symbols()
    tokens = tokens + [t + "</w>" for t in tokens]
    tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocabulary = {token: index for index, token in enumerate(tokens)}
    assert len(vocabulary) == len(tokens) == 49408
    return vocabulary


LONG_PROMPT = (
    "a breathtaking ultra detailed matte painting of an ancient floating city above the clouds at "
    "golden hour, intricate gothic architecture, waterfalls cascading into the void, flocks of birds, "
    "volumetric god rays, cinematic composition, dramatic lighting, octane render, unreal engine 5, "
    "8k resolution, trending on artstation, by greg rutkowski and alphonse mucha and thomas kinkade, "
    "highly detailed, sharp focus, vibrant colors, masterpiece, award winning photograph"
)

PROMPTS = [
    # typical Stable Diffusion prompts
    "a photo of a cat",
    "a photo of an astronaut riding a horse on mars",
    "the black dog",
    "A majestic lion jumping from a big stone at night",
    "portrait of a young woman, oil on canvas, by John Singer Sargent",
    "cyberpunk city street at night, neon lights, rain, reflections, 4k",
    "(masterpiece:1.2), (best quality:1.3), 1girl, solo, long hair, looking at viewer",
    "((masterpiece)), [[low quality]], {detailed}, <lora:add_detail:0.8>",
    "a cute corgi wearing sunglasses::2 | beach::0.5",
    "landscape, mountains, lake, sunrise, --ar 16:9 --v 5",
    "photo of a red apple on a wooden table, 85mm, f/1.8, bokeh",
    "watercolor painting of a fox in the snow",
    "an isometric 3d render of a tiny house, pastel colors, blender, octane",
    "studio ghibli style, a girl standing in a field of sunflowers",
    "low poly art of a whale swimming in space",
    "hyperrealistic close-up of a human eye, macro photography",
    "A Bowl Of Ramen With Chopsticks, Food Photography, Top-Down View",
    "steampunk airship over victorian london, sepia tone",
    "negative prompt: blurry, lowres, bad anatomy, bad hands, text, error, missing fingers",
    "ugly, deformed, disfigured, poor details, bad anatomy, extra limbs, watermark, signature",
    "a painting of a sunset in the style of van gogh's starry night",
    "an astronaut lounging in a tropical resort in space, vaporwave",
    "pixel art of a knight fighting a dragon, 16-bit, snes",
    "a corgi's face, digital art",
    "stained glass window depicting a phoenix",
    "a bowl of soup that is also a portal to another dimension, digital art",
    "teddy bears working on new AI research on the moon in the 1980s",
    "an armchair in the shape of an avocado",
    "A sea otter with a pearl earring by Johannes Vermeer",
    "Photorealistic render of a futuristic car, Unreal Engine 5, RTX, 8K UHD",
    # numbers
    "1234567890",
    "3.14159 2.71828 1e-10 -42 +7 0x1F",
    "in the year 2077, 100% pure, $19.99, #1, 50/50, 3:2",
    "1girl 2boys 10 fingers 1000000 stars",
    "123abc456def",
    "version 1.5 vs 2.1 vs xl 1.0",
    "٣٤٥ ١٢ (arabic-indic digits) and ५६७ (devanagari) and 八九十",
    "½ ¾ ² ³ ⅷ Ⅻ ① ⑩",
    # contractions and apostrophes
    "don't",
    "it'S",
    "I'M HERE, YOU'RE THERE, WE'VE GONE, THEY'LL COME, SHE'D LEFT",
    "isn't, can't, won't, shouldn't've, y'all, o'clock",
    "'s 't 're 've 'm 'll 'd",
    "'''quoted''' and \"double\" and `back`",
    "rock 'n' roll",
    "the dog's bone and the dogs' bones",
    "l'été à paris, c'est magnifique",
    "don\u2019t use curly apostrophes \u2018like this\u2019",
    "'ſt and 'ſ with a long s",
    # URLs, code, punctuation
    "https://example.com/path?query=1&other=two#anchor",
    "visit www.Example.ORG or email me@example.com",
    "C:\\Users\\kiln\\images\\out.png",
    "def f(x): return x**2 + 1; // comment /* block */",
    "!!!???...,,,;;;:::",
    "hello!!! world??? wow!!!!!",
    "!",
    "!hello! !world!",
    "a!b!c",
    "-- == ++ __ ~~ ^^ @@ ## $$ %% && ** (( )) [[ ]] {{ }} || \\\\ // << >>",
    "...",
    "<html><body>hi</body></html>",
    "#hashtag @mention $ticker",
    "emoji :) :-( ;) <3 xD",
    # emoji
    "a cat 🐱 and a dog 🐶",
    "🔥🔥🔥 lit 🔥",
    "family: 👨‍👩‍👧‍👦 and couple 👩‍❤️‍👨",
    "flags 🇺🇸 🇯🇵 🏳️‍🌈 🏴‍☠️",
    "skin tones 👋🏻 👋🏿 and keycap 1️⃣ #️⃣",
    "heart ❤️ vs ❤ vs ♥",
    "😀😃😄😁😆😅😂🤣",
    "🧑‍🚀 astronaut emoji riding a 🐎 on 🔴 mars",
    # CJK, Japanese, Korean
    "一只可爱的猫",
    "宇宙飛行士が馬に乗っている写真",
    "고양이 사진, 고화질",
    "中文English混合text测试",
    "日本語とEnglishのmix、カタカナ、ひらがな。",
    "𠀀𠀁 (cjk extension b) 㐀㐁 (extension a) 豈 (compatibility)",
    "全角ＡＢＣ１２３，句読点。「かぎ括弧」",
    "漢字abc漢字",
    # Arabic, Hebrew, other scripts
    "مرحبا بالعالم",
    "قطة جميلة في الحديقة",
    "שלום עולם",
    "a mix of English and עברית and العربية in one prompt",
    "Привет, мир! КОШКА на крыше",
    "Γειά σου Κόσμε, ΟΔΥΣΣΕΥΣ",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "ሰላም ልዑል",
    "Ꭰ Ꭱ Ꭲ cherokee and ᚠᚢᚦ runes",
    # accented Latin and case mapping
    "café naïve résumé jalapeño",
    "CAFÉ NAÏVE RÉSUMÉ JALAPEÑO",
    "Ærøskøbing Ångström Œuvre Straße STRASSE",
    "İstanbul ISTANBUL ıi",
    "Ǆemal ǅemal ǆemal",
    "Ωmega ΣΊΣΥΦΟΣ ΌΣΟΣ",
    "Ｆｕｌｌｗｉｄｔｈ ＬＡＴＩＮ",
    "ﬁne ﬂower ﬀ",
    "Ⅻ ⅫI ⓐⓑⓒ ⒶⒷⒸ",
    "ǅ ǈ ǋ ǲ titlecase digraphs",
    # combining characters and normalization
    "cafe\u0301 vs caf\u00e9",
    "e\u0301\u0302\u0303 stacked marks",
    "a\u030a\u0301 o\u0308\u0304",
    "\u0301leading combining mark",
    "n\u0303 and \u00f1",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354LG\u036b\u0357O zalgo",
    "\u1100\u1161\u11a8 conjoining jamo",
    "\u0f73 \u0f71\u0f72 tibetan",
    "\ufb01 \u212b \u2126 \u212a compatibility letters",
    "e\u0328\u0301 ogonek acute",
    # whitespace
    "  leading and trailing spaces  ",
    "multiple     spaces    between   words",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds",
    "\t\n  \r\n",
    "non\u00a0breaking\u2003em\u3000ideographic\u2009thin\u202fnarrow spaces",
    "line\u2028separator\u2029paragraph",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "\u3000\u3000full width spaces only\u3000",
    "ogham\u1680space and mongolian\u180evowel separator",
    # control characters and odd code points
    "null\x00byte and bell\x07 and escape\x1b[31mred\x1b[0m",
    "del\x7f and c1\x85\x9f controls",
    "replacement \ufffd character",
    "soft\u00adhyphen and word\u2060joiner",
    "private use \ue000\uf8ff and supplementary \U000f0000",
    "rtl mark \u200f and ltr \u200e and embedding \u202bأ\u202c",
    "file\x1cgroup\x1drecord\x1eunit\x1fseparators",
    "noncharacter \ufdd0 and \uffff",
    "variation selector \ufe0f\ufe0e alone",
    "ypogegrammeni x\u0345y \u0345 \u03b1\u0345 !\u0345! \u1fb3",
    "newer than unicode 14: \U0001fae8 shaking face, \U0001fa77 pink heart, \u0cf3 kannada",
    # special tokens inside text
    "<|endoftext|>",
    "<|startoftext|>",
    "a photo<|endoftext|>of a cat",
    "a photo <|endoftext|> of a cat <|startoftext|>",
    "<|ENDOFTEXT|> uppercase special token",
    "<|endoftext|><|endoftext|><|startoftext|>",
    "<|endoftext",
    "x<|endoftext|>!",
    "!<|endoftext|>!",
    "<|ſtartoftext|>",
    "<| endoftext |>",
    # upper case and mixed case
    "A PHOTO OF A CAT",
    "ThIs Is MiXeD CaSe TeXt",
    "HTTPS://EXAMPLE.COM",
    "McDonald's iPhone eBay YouTube",
    # degenerate inputs
    "",
    " ",
    "   \t\t   ",
    "\n",
    "a",
    "A",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 300,
    # long prompts, around and beyond the 77-token window
    LONG_PROMPT,
    LONG_PROMPT + ", " + LONG_PROMPT,
    " ".join(["cat"] * 74),
    " ".join(["cat"] * 75),
    " ".join(["cat"] * 76),
    " ".join(["cat"] * 77),
    "!" * 200,
    "🐱" * 100,
    "猫" * 100,
    ", ".join(str(n) for n in range(60)),
]


def main():
    if transformers.__version__ != PINNED_TRANSFORMERS:
        sys.exit(f"transformers {transformers.__version__} found, {PINNED_TRANSFORMERS} required")
    merges_path = FIXTURE_DIR / "merges.txt"
    vocabulary = build_vocabulary(merges_path)
    with tempfile.TemporaryDirectory() as folder:
        vocab_path = Path(folder) / "vocab.json"
        vocab_path.write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
        default = CLIPTokenizer(str(vocab_path), str(merges_path))
        bang = CLIPTokenizer(str(vocab_path), str(merges_path), pad_token="!")
    assert default.fix_text is None and bang.fix_text is None, "ftfy path active"
    assert len(set(PROMPTS)) == len(PROMPTS), "duplicate prompt"

    cases = []
    for text in PROMPTS:
        padded = default(text, padding="max_length", max_length=MAX_LENGTH, truncation=True)
        bang_padded = bang(text, padding="max_length", max_length=MAX_LENGTH, truncation=True)
        cases.append(
            {
                "text": text,
                "ids": default(text).input_ids,
                "padded_ids": padded.input_ids,
                "attention_mask": padded.attention_mask,
                "bang_ids": bang(text).input_ids,
                "bang_padded_ids": bang_padded.input_ids,
            }
        )
    out = {"transformers": transformers.__version__, "cases": cases}
    path = FIXTURE_DIR / "token_ids.json"
    # One case per line keeps the file diffable while staying compact.
    lines = [json.dumps(case, ensure_ascii=False, separators=(",", ":")) for case in cases]
    path.write_text(
        '{"transformers":' + json.dumps(out["transformers"]) + ',"cases":[\n' + ",\n".join(lines) + "\n]}\n",
        encoding="utf-8",
    )
    print(f"wrote {len(cases)} cases to {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
