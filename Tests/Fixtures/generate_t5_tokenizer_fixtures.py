"""Write a small T5 tokenizer and reference ids for Kiln's T5Tokenizer tests.

Rerun from the repository root (nothing is downloaded; the model is trained here):

    python3 -m venv .venv
    .venv/bin/pip install -r Tests/Fixtures/requirements.txt
    .venv/bin/python Tests/Fixtures/generate_t5_tokenizer_fixtures.py

No real T5 tokenizer can be fetched, so this script builds a realistic one:

1. It trains a SentencePiece Unigram model (sentencepiece 0.2.3) on a varied
   corpus written out below, with T5's settings: `nmt_nfkc` normalization,
   `<pad>`=0, `</s>`=1, `<unk>`=2, no BOS, full character coverage of the
   corpus, no byte fallback. That is `spiece.model`.
2. transformers' slow `T5Tokenizer` loads it (adding T5's 100 `<extra_id_N>`
   tokens after the pieces) and `T5TokenizerFast(from_slow=True)` converts it;
   `save_pretrained` writes the folder exactly as transformers does:
   tokenizer.json (Precompiled charsmap normalizer, Metaspace pre-tokenizer,
   TemplateProcessing appending `</s>`), special_tokens_map.json,
   tokenizer_config.json and spiece.model.
3. It records `T5TokenizerFast` ids for every prompt below, the way the SD3 and
   FLUX pipelines call it:
   tokenizer(prompt, padding="max_length", max_length=N, truncation=True,
             add_special_tokens=True)
   for N in 77, 256 and 512, and checks that a fast tokenizer built from
   `spiece.model` with the two configuration files but no tokenizer.json gives
   the same ids. A fast tokenizer built from `spiece.model` alone has
   `<extra_id_N>` tokens that do not strip the spaces next to them; its ids are
   recorded for any prompt where that changes them (with the normalizer's
   right strip and the Metaspace prefix, none of these prompts do).
4. It also records the unpadded ids of a fast tokenizer converted with
   `legacy=False`, whose only difference is the Metaspace `prepend_scheme`
   "first" instead of "always" (asserted below); the tests patch that field
   into a copy of tokenizer.json. It asserts that `spiece.model` with
   `"legacy": false` in tokenizer_config.json gives these same ids.
5. It writes byte_fallback/tokenizer.json, a tokenizers Unigram tokenizer with
   byte fallback and other components T5 lacks (see byte_fallback_tokenizer),
   and records its ids for every prompt.

Output, in Tests/KilnModelsTests/Fixtures/t5_tokenizer/:
  tokenizer/         the saved T5TokenizerFast folder (4 files)
  byte_fallback/     tokenizer.json of step 5
  token_ids.json     {"versions": {...}, "max_lengths": [77, 256, 512],
                      "pad_id": 0, "eos_id": 1,
                      "cases": [{"text", "ids", "first_ids", "lengths",
                                 "byte_fallback_ids",
                                 "spiece_ids" (only where it differs)}]}
     ids        tokenizer(text).input_ids (tokens + `</s>`, no padding)
     first_ids  the same from the prepend_scheme "first" tokenizer
     spiece_ids the same from a T5TokenizerFast loaded from spiece.model alone
     byte_fallback_ids  Tokenizer.encode(text).ids of the step 5 tokenizer
     lengths    for each max length N (same order as max_lengths), how many
                leading entries of the padded/truncated input_ids are real
                tokens; the recorded call returned
                input_ids = ids[:L-1] + [</s>] + [0] * (N - L)   (L < len(ids))
                input_ids = ids + [0] * (N - L)                  (L == len(ids))
                attention_mask = [1] * L + [0] * (N - L)
                which this script asserts before writing, so storing L
                keeps the file small without losing information.
Output is deterministic: rerunning rewrites identical files.
"""

import io
import json
import random
import shutil
import tempfile
from pathlib import Path

import sentencepiece
import tokenizers
import transformers
from transformers import T5Tokenizer, T5TokenizerFast

PINNED = {"transformers": "4.57.6", "tokenizers": "0.22.2", "sentencepiece": "0.2.3"}
FIXTURE_DIR = Path(__file__).resolve().parents[1] / "KilnModelsTests" / "Fixtures" / "t5_tokenizer"
MAX_LENGTHS = [77, 256, 512]
VOCAB_SIZE = 3000
EXTRA_IDS = 100


def check_versions():
    found = {
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "sentencepiece": sentencepiece.__version__,
    }
    if found != PINNED:
        raise SystemExit(f"expected {PINNED}, found {found}: install Tests/Fixtures/requirements.txt")
    return found


# --- training corpus -------------------------------------------------------------------------

SUBJECTS = [
    "a cat", "an old dog", "the astronaut", "a red fox", "two horses", "a tiny robot", "the wizard",
    "a lighthouse", "a medieval castle", "an owl", "a sailing ship", "the city skyline", "a dragon",
    "a bowl of ramen", "a vintage car", "a mountain village", "an elephant", "a jellyfish",
    "a samurai", "a ballerina", "the forest spirit", "a steam locomotive", "a hummingbird",
    "a portrait of a woman", "a young boy", "an ancient temple", "the northern lights",
]
ACTIONS = [
    "sitting on", "riding", "flying over", "standing in front of", "walking through", "painted on",
    "hiding behind", "dancing with", "reading a book under", "looking at", "sleeping next to",
    "floating above", "running across", "swimming under", "glowing inside",
]
PLACES = [
    "a wooden table", "the moon", "mars", "a snowy forest", "the ocean", "a neon city street",
    "a field of sunflowers", "an abandoned factory", "a library", "the desert at sunset",
    "a rainy window", "a crowded market", "the clouds", "a coral reef", "a cozy kitchen",
]
STYLES = [
    "oil painting", "watercolor", "digital art", "photorealistic", "35mm photograph", "studio lighting",
    "cinematic composition", "highly detailed", "sharp focus", "octane render", "unreal engine",
    "concept art", "pixel art", "low poly", "isometric", "trending on artstation", "8k", "4k uhd",
    "volumetric lighting", "bokeh", "golden hour", "pastel colors", "ukiyo-e", "art nouveau",
    "by greg rutkowski", "by alphonse mucha", "in the style of van gogh", "masterpiece", "best quality",
]
PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Photography is the art of writing with light; every picture tells a story.",
    "Diffusion models learn to reverse a gradual noising process, step by step.",
    "Please don't forget: the meeting starts at 9:30 a.m. on Monday, March 3rd, 2025.",
    "She said, \"I can't believe it's already 10 o'clock!\" and laughed.",
    "Version 2.1 improves speed by 35% and reduces memory from 12 GB to 7.5 GB.",
    "Call +1 (555) 123-4567 or write to info@example.com for details.",
    "Visit https://example.org/gallery?id=42&sort=new for more images.",
    "Temperatures ranged from -5 °C to 32 °C, about 23 °F to 90 °F.",
    "Le café est très bon, mais la crème brûlée est encore meilleure.",
    "Der Straßenbahnfahrer grüßt die Fußgänger höflich.",
    "El niño comió una piña en la mañana soleada.",
    "Ein Bild sagt mehr als tausend Worte.",
    "Ça va? Oui, ça va très bien, merci beaucoup!",
    "São Paulo é a maior cidade do Brasil.",
    "Zażółć gęślą jaźń, powiedział Łukasz.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Árvíztűrő tükörfúrógép és öt szép szűzlány.",
    "Привет, как дела? Сегодня хорошая погода.",
    "Γειά σου κόσμε, η φωτογραφία είναι τέχνη.",
    "一只可爱的小猫坐在窗台上看着外面的雨。",
    "東京の夜景はとても美しいです。",
    "山の上に古いお寺があります。",
    "서울의 밤거리는 아름답습니다.",
    "مرحبا بكم في المعرض الفني",
    "שלום, מה שלומך היום?",
    "नमस्ते, आप कैसे हैं?",
    "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ ａｎｄ ｎｕｍｂｅｒｓ １２３ appear in Japanese input.",
    "Ligatures like ﬁ and ﬂ, superscripts x² and y³, fractions ½ and ¼.",
    "Roman numerals Ⅳ and Ⅻ, circled ① ② ③, and the ℃ sign.",
    "Emoji: 🐱 🐶 🔥 ❤️ 🌈 🚀 ✨ 😀",
    "Math: 3 × 4 = 12, 10 ÷ 2 = 5, √16 = 4, π ≈ 3.14159, ∞ > 0.",
    "Quotes “curly” and ‘single’ and «guillemets» and „low‟.",
    "Dashes – and — and the ellipsis … and the bullet • are common.",
    "Code: def f(x): return x ** 2 + 1  # squares",
    "Path C:\\Users\\artist\\renders\\final_v2.png was saved.",
    "Tags: #sunset #beach @photographer $100 50% off!",
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 2024 3.5 0.75",
]


WORDS = (
    "light shadow color texture surface water fire stone metal glass wood paper cloth silk velvet "
    "river mountain valley ocean island desert forest jungle meadow garden street bridge tower "
    "window door roof wall floor ceiling staircase corridor chamber palace cottage harbor station "
    "morning evening midnight twilight season winter summer autumn spring storm thunder lightning "
    "gentle fierce quiet loud bright dark ancient modern futuristic rustic elegant shabby ornate "
    "glowing shimmering crumbling towering sprawling hidden forgotten enchanted mysterious serene "
    "portrait landscape still life sculpture illustration sketch etching mosaic fresco tapestry "
    "camera lens aperture shutter exposure contrast saturation composition perspective symmetry "
    "character creature monster hero villain knight princess merchant farmer sailor soldier monk "
    "dragonfly butterfly sparrow raven eagle tiger wolf bear rabbit squirrel turtle dolphin whale "
    "apple orange lemon cherry strawberry banana grape peach melon coconut mushroom pumpkin carrot "
    "breakfast dinner coffee teapot bread cheese chocolate pastry noodle dumpling sushi curry "
    "happiness sorrow wonder fear courage curiosity nostalgia solitude harmony chaos balance "
    "running jumping climbing falling swimming reading writing singing painting building breaking "
    "beautiful terrible wonderful impossible incredible unbelievable extraordinary magnificent "
    "electricity photosynthesis architecture civilization imagination transformation reflection "
    "neural network gradient sampler scheduler latent decoder encoder attention transformer "
    "resolution upscaling denoising guidance embedding tokenizer vocabulary probability"
).split()

SYLLABLES = [
    "ka", "lo", "mi", "ren", "tor", "vel", "quin", "sha", "dro", "gan", "pel", "zu", "ith", "mor",
    "bel", "cra", "fen", "hal", "jor", "nys", "ost", "pra", "rud", "sil", "tav", "und", "wyn", "xer",
    "ya", "zol", "aer", "bri", "cor", "dun", "eth", "fal", "gri", "hol", "ivo", "jen",
]


def corpus_lines():
    """A deterministic, varied corpus: prose lines, generated image prompts and sentences."""
    generator = random.Random(20240607)
    lines = list(PROSE) * 3

    def name():
        word = "".join(generator.choice(SYLLABLES) for _ in range(generator.randint(2, 4)))
        return word.capitalize() if generator.random() < 0.5 else word

    for _ in range(6000):
        words = [generator.choice(WORDS) for _ in range(generator.randint(4, 14))]
        for index in range(len(words)):
            if generator.random() < 0.12:
                words[index] = name()
            elif generator.random() < 0.05:
                words[index] = str(generator.randint(0, 5000))
        sentence = " ".join(words)
        if generator.random() < 0.5:
            sentence = sentence.capitalize() + generator.choice([".", "!", "?", ",", ";", "..."])
        lines.append(sentence)
    for _ in range(4000):
        parts = [generator.choice(SUBJECTS), generator.choice(ACTIONS), generator.choice(PLACES)]
        prompt = " ".join(parts)
        styles = generator.sample(STYLES, generator.randint(1, 5))
        prompt = ", ".join([prompt] + styles)
        if generator.random() < 0.3:
            prompt = prompt.capitalize()
        if generator.random() < 0.2:
            prompt += f", seed {generator.randint(0, 99999)}"
        if generator.random() < 0.15:
            prompt = f"({prompt}:{generator.randint(5, 15) / 10})"
        lines.append(prompt)
        if generator.random() < 0.1:
            lines.append(generator.choice(PROSE))
    return lines


def train_spiece_model():
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines()),
        model_writer=model,
        model_type="unigram",
        vocab_size=VOCAB_SIZE,
        normalization_rule_name="nmt_nfkc",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        byte_fallback=False,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    return model.getvalue()


# --- prompts ---------------------------------------------------------------------------------

LONG_PROMPT = (
    "a breathtaking ultra detailed matte painting of an ancient floating city above the clouds at "
    "golden hour, intricate gothic architecture, waterfalls cascading into the void, flocks of birds, "
    "volumetric god rays, cinematic composition, dramatic lighting, octane render, unreal engine 5, "
    "8k resolution, trending on artstation, by greg rutkowski and alphonse mucha, highly detailed, "
    "sharp focus, vibrant colors, masterpiece, award winning photograph"
)

PROMPTS = [
    # empty and whitespace only
    "",
    " ",
    "   ",
    "\t",
    "\n",
    " \t \n ",
    # typical diffusion prompts
    "a photo of a cat",
    "a photo of an astronaut riding a horse on mars",
    "A cat holding a sign that says hello world",
    "A capybara holding a sign that reads Hello World",
    "portrait of a young woman, oil on canvas, by John Singer Sargent",
    "cyberpunk city street at night, neon lights, rain, reflections, 4k",
    "(masterpiece:1.2), (best quality:1.3), 1girl, solo, long hair, looking at viewer",
    "((masterpiece)), [[low quality]], {detailed}, <lora:add_detail:0.8>",
    "landscape, mountains, lake, sunrise, --ar 16:9 --v 5",
    "photo of a red apple on a wooden table, 85mm, f/1.8, bokeh",
    "an isometric 3d render of a tiny house, pastel colors, blender, octane",
    "A Bowl Of Ramen With Chopsticks, Food Photography, Top-Down View",
    "negative prompt: blurry, lowres, bad anatomy, bad hands, text, error, missing fingers",
    "teddy bears working on new AI research on the moon in the 1980s",
    "an armchair in the shape of an avocado",
    "A sea otter with a pearl earring by Johannes Vermeer",
    "Photorealistic render of a futuristic car, Unreal Engine 5, RTX, 8K UHD",
    "a lighthouse flying over a coral reef, ukiyo-e, golden hour",
    "THE WIZARD DANCING WITH A DRAGON, ART NOUVEAU",
    "the northern lights glowing inside a rainy window, bokeh, masterpiece",
    # spaces: repeated, leading, trailing, other whitespace
    "  leading spaces",
    "trailing spaces   ",
    "   both sides   ",
    "many     spaces     between     words",
    "two  spaces",
    "a \t tab and a\ttab",
    "line one\nline two\n\nline four",
    "windows\r\nline endings\r\n",
    "carriage\rreturn",
    "vertical\u000btab and form\u000cfeed",
    "no\u00a0break\u00a0space",
    "ideographic\u3000space",
    "em\u2003space and thin\u2009space and hair\u200aspace",
    "zero\u200bwidth\u200bspace",
    "zero\u200cwidth\u200dnon joiner",
    "soft\u00adhyphen",
    "word\u2028line separator\u2029paragraph separator",
    "\u0085next line",
    "byte order mark \ufeff inside",
    "▁already▁has▁metaspace",
    "▁",
    " ▁ ",
    "▁▁double",
    # punctuation
    "!!!???...,,,;;;:::",
    "hello!!! world??? wow!!!!!",
    "!",
    ".",
    "a!b!c",
    "-- == ++ __ ~~ ^^ @@ ## $$ %% && ** (( )) [[ ]] {{ }} || \\\\ // << >>",
    "...",
    "<html><body>hi</body></html>",
    "#hashtag @mention $ticker",
    "https://example.com/path?query=1&other=two#anchor",
    "visit www.Example.ORG or email me@example.com",
    "C:\\Users\\kiln\\images\\out.png",
    "def f(x): return x**2 + 1; // comment /* block */",
    "don't",
    "I'M HERE, YOU'RE THERE, WE'VE GONE",
    "'''quoted''' and \"double\" and `back`",
    "don\u2019t use curly apostrophes \u2018like this\u2019",
    "\u201cdouble curly\u201d \u00abguillemets\u00bb \u201elow\u201f",
    "en \u2013 dash, em \u2014 dash, ellipsis \u2026 bullet \u2022",
    "minus \u2212 sign and hyphen \u2010 and figure dash \u2012",
    # digits and numbers
    "1234567890",
    "3.14159 2.71828 1e-10 -42 +7 0x1F",
    "in the year 2077, 100% pure, $19.99, #1, 50/50, 3:2",
    "1girl 2boys 10 fingers 1000000 stars",
    "123abc456def",
    "٣٤٥ ١٢ arabic-indic digits and ५६७ devanagari",
    "½ ¾ ² ³ ⅷ Ⅻ ① ⑩",
    "x² + y² = z²",
    "H₂O and CO₂",
    "10℃ 50℉ 5㎏ 3㎞ ㍻",
    "㈱ ㊤ ㋿",
    # accents and case
    "café naïve résumé jalapeño",
    "CAFÉ NAÏVE RÉSUMÉ JALAPEÑO",
    "cafe\u0301 with a combining accent",
    "e\u0301\u0301 two combining accents",
    "\u0301 leading combining mark",
    "Ærøskøbing Ångström Œuvre Straße STRASSE",
    "Ångström with A-ring U+212B: \u212bngstr\u00f6m",
    "İstanbul ISTANBUL ıi",
    "Ǆemal ǅemal ǆemal",
    "Ωmega ΣΊΣΥΦΟΣ and Ohm sign \u2126",
    "Zażółć gęślą jaźń",
    "Příliš žluťoučký kůň",
    "Le café est très bon",
    "Der Straßenbahnfahrer grüßt höflich",
    "crème brûlée",
    "ñ vs n\u0303",
    "Å\u0301 composed plus combining",
    "Ａ\u0301 fullwidth plus combining",
    # full-width and other NFKC cases
    "Ｆｕｌｌｗｉｄｔｈ ＬＡＴＩＮ",
    "全角ＡＢＣ１２３，句読点。「かぎ括弧」",
    "ﬁne ﬂower ﬀ ﬃ",
    "ｶﾀｶﾅ half-width katakana ｶﾞ",
    "ℌ𝔢𝔩𝔩𝔬 𝐛𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐 𝟙𝟚𝟛",
    "™ © ® ℠",
    "Ⅳ Ⅻ ⅰⅱⅲ",
    "µ micro sign and μ mu",
    "ſ long s",
    "…",
    "‥ two dot leader",
    "﹏ ﹐ ﹑ small forms",
    "︵ vertical form ︶",
    "⁰¹²³⁴⁵⁶⁷⁸⁹ ₀₁₂₃",
    "ℎ planck and ℏ",
    "ǈ lj digraph",
    "ﷺ arabic ligature",
    "㍿ square corporation",
    "\u2460\u2461\u2462 circled and \u24b6\u24b7 circled letters",
    # CJK and other scripts
    "一只可爱的猫",
    "一只可爱的小猫坐在窗台上",
    "宇宙飛行士が馬に乗っている写真",
    "東京の夜景はとても美しいです。",
    "고양이 사진, 고화질",
    "서울의 밤거리",
    "中文English混合text测试",
    "日本語とEnglishのmix、カタカナ、ひらがな。",
    "𠀀𠀁 extension b 㐀㐁 extension a 豈 compatibility",
    "漢字abc漢字",
    "مرحبا بكم في المعرض",
    "שלום, מה שלומך?",
    "Привет, как дела?",
    "ПРИВЕТ МИР",
    "Γειά σου κόσμε",
    "नमस्ते, आप कैसे हैं?",
    "สวัสดีชาวโลก",
    "ሰላም ልዑል",
    "ᚠᚢᚦ runes and Ꭰ Ꭱ cherokee",
    # emoji
    "a cat 🐱 and a dog 🐶",
    "🔥🔥🔥 lit 🔥",
    "family: 👨‍👩‍👧‍👦 and couple 👩‍❤️‍👨",
    "flags 🇺🇸 🇯🇵 🏳️‍🌈",
    "skin tones 👋🏻 👋🏿 and keycap 1️⃣ #️⃣",
    "heart ❤️ vs ❤ vs ♥",
    "😀😃😄😁😆😅😂🤣",
    "🚀✨🌈",
    # unknown characters
    "☃ snowman ☄ comet",
    "\ue000 private use",
    "𓀀 egyptian hieroglyph",
    "⛩ shrine and ⌘ command",
    "♜♞♝♛♚ chess",
    "unknown ☃☃☃ fused",
    "☃",
    "a☃b☃c",
    "control\u0001char\u007fdel",
    "nul\u0000char",
    "unpaired \U0010fffd plane 16",
    # special tokens and extra ids as literals
    "</s>",
    "<pad>",
    "<unk>",
    "hello</s>world",
    "hello </s> world",
    "text <pad> with pad",
    "<extra_id_0>",
    "<extra_id_99>",
    "<extra_id_0> fills <extra_id_1> the blanks <extra_id_2>",
    "The <extra_id_0> walks in <extra_id_1> park",
    "no space<extra_id_5>around",
    "  <extra_id_7>  spaces around  <extra_id_8>  ",
    "<extra_id_100> is not a token",
    "<extra_id_> and <extra_id_x> and <EXTRA_ID_0>",
    "<extra_id_1><extra_id_2></s><pad>",
    "\t<extra_id_3>\n",
    "</s></s>",
    "< /s> and </ s> are not tokens",
    # case variants and repetitions
    "cat Cat CAT cAt",
    "a a a a a a a a a a",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "the the the the",
    "red, red, red, red, red",
    # long prompts that truncate
    LONG_PROMPT,
    LONG_PROMPT + " " + LONG_PROMPT,
    " ".join([LONG_PROMPT] * 5),
    " ".join(["word"] * 600),
    " ".join(str(number) for number in range(400)),
    "🐱" * 300,
    "一只可爱的猫" * 120,
    ", ".join(STYLES * 6),
    # a few corpus sentences
] + PROSE[:20]


# --- building and recording ------------------------------------------------------------------


def save_tokenizer(spiece_model, folder):
    scratch = Path(tempfile.mkdtemp())
    try:
        (scratch / "spiece.model").write_bytes(spiece_model)
        slow = T5Tokenizer(vocab_file=str(scratch / "spiece.model"), extra_ids=EXTRA_IDS, legacy=True)
        slow.save_pretrained(scratch / "slow")
        fast = T5TokenizerFast.from_pretrained(scratch / "slow", from_slow=True, legacy=True)
        fast.save_pretrained(folder)
    finally:
        shutil.rmtree(scratch)


def padded_lengths(tokenizer, text, ids):
    lengths = []
    for max_length in MAX_LENGTHS:
        encoded = tokenizer(
            text, padding="max_length", max_length=max_length, truncation=True, add_special_tokens=True
        )
        input_ids, mask = encoded.input_ids, encoded.attention_mask
        assert len(input_ids) == len(mask) == max_length
        length = sum(mask)
        if length < len(ids):
            expected = ids[: length - 1] + [tokenizer.eos_token_id]
        else:
            expected = ids
        assert input_ids[:length] == expected, (text, max_length)
        assert input_ids[length:] == [tokenizer.pad_token_id] * (max_length - length), (text, max_length)
        assert mask == [1] * length + [0] * (max_length - length), (text, max_length)
        lengths.append(length)
    return lengths


BYTE_FALLBACK_PIECES = 600


def byte_fallback_tokenizer(fast):
    """A Unigram tokenizer.json exercising what T5's does not: byte fallback, NFKC and
    Lowercase normalizers, the pre-0.14 WhitespaceSplit + Metaspace pre-tokenizer sequence, and a
    template with a token before the text. Its vocabulary is the first pieces of the trained
    model plus the 256 `<0xXX>` byte pieces, so most text falls back to bytes."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    trained = json.loads(fast.backend_tokenizer.to_str())["model"]["vocab"][:BYTE_FALLBACK_PIECES]
    vocab = [(piece, score) for piece, score in trained]
    vocab += [(f"<0x{byte:02X}>", -20.0) for byte in range(256)]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=2, byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.NFKC(),
            normalizers.Lowercase(),
            normalizers.Strip(left=True, right=True),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<pad> $A </s>", special_tokens=[("<pad>", 0), ("</s>", 1)]
    )
    tokenizer.add_special_tokens(["<pad>", "</s>"])
    return tokenizer


def main():
    versions = check_versions()
    output = FIXTURE_DIR / "tokenizer"
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    save_tokenizer(train_spiece_model(), output)

    fast = T5TokenizerFast.from_pretrained(output)
    assert (fast.pad_token_id, fast.eos_token_id, fast.unk_token_id) == (0, 1, 2)
    assert len(fast) == VOCAB_SIZE + EXTRA_IDS

    # The legacy=False conversion differs only in the Metaspace prepend scheme.
    first = T5TokenizerFast.from_pretrained(output, legacy=False, from_slow=True)
    always_json = json.loads(fast.backend_tokenizer.to_str())
    first_json = json.loads(first.backend_tokenizer.to_str())
    assert first_json["pre_tokenizer"]["prepend_scheme"] == "first"
    assert always_json["pre_tokenizer"]["prepend_scheme"] == "always"
    for key in ("pre_tokenizer", "decoder"):
        first_json[key]["prepend_scheme"] = "always"
    assert first_json == always_json

    scratch = Path(tempfile.mkdtemp())
    try:
        # Only spiece.model: transformers converts it on load. Its <extra_id_N> tokens then
        # do not strip the spaces around them (T5TokenizerFast adds them plainly), unlike
        # the saved folder's, whose tokenizer.json keeps the slow tokenizer's lstrip/rstrip.
        shutil.copy(output / "spiece.model", scratch / "spiece.model")
        from_spiece = T5TokenizerFast.from_pretrained(scratch, legacy=True)
        # spiece.model with the two configuration files but no tokenizer.json: the added
        # tokens' flags come from tokenizer_config.json, so the ids are the full folder's.
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(output / name, scratch / name)
        without_json = T5TokenizerFast.from_pretrained(scratch)
        # The same with "legacy": false in tokenizer_config.json converts with prepend "first".
        config = (output / "tokenizer_config.json").read_text(encoding="utf-8")
        assert config.count('"legacy": true') == 1
        (scratch / "tokenizer_config.json").write_text(config.replace('"legacy": true', '"legacy": false'))
        without_json_first = T5TokenizerFast.from_pretrained(scratch)
    finally:
        shutil.rmtree(scratch)

    byte_fallback = byte_fallback_tokenizer(fast)
    byte_fallback_folder = FIXTURE_DIR / "byte_fallback"
    byte_fallback_folder.mkdir(exist_ok=True)
    byte_fallback.save(str(byte_fallback_folder / "tokenizer.json"))

    assert len(PROMPTS) >= 150 and len(set(PROMPTS)) == len(PROMPTS)
    cases = []
    for text in PROMPTS:
        ids = fast(text).input_ids
        assert without_json(text).input_ids == ids, text
        case = {
            "text": text,
            "ids": ids,
            "first_ids": first(text).input_ids,
            # (asserted below to equal the spiece.model + legacy=false configuration's ids)
            "lengths": padded_lengths(fast, text, ids),
        }
        assert without_json_first(text).input_ids == case["first_ids"], text
        spiece_ids = from_spiece(text).input_ids
        if spiece_ids != ids:
            case["spiece_ids"] = spiece_ids
        case["byte_fallback_ids"] = byte_fallback.encode(text).ids
        cases.append(case)
    assert any(len(case["ids"]) > max(MAX_LENGTHS) for case in cases)
    assert any(fast.unk_token_id in case["ids"] for case in cases)
    assert any(case["first_ids"] != case["ids"] for case in cases)
    byte_ids = set(range(BYTE_FALLBACK_PIECES, BYTE_FALLBACK_PIECES + 256))
    assert sum(bool(byte_ids.intersection(case["byte_fallback_ids"])) for case in cases) > 50

    fixture = {
        "versions": versions,
        "max_lengths": MAX_LENGTHS,
        "pad_id": fast.pad_token_id,
        "eos_id": fast.eos_token_id,
        "cases": cases,
    }
    text = json.dumps(fixture, ensure_ascii=True, indent=None, separators=(",", ":"))
    # One case per line keeps diffs readable.
    text = text.replace(',{"text"', ',\n{"text"')
    (FIXTURE_DIR / "token_ids.json").write_text(text + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases and {sorted(p.name for p in output.iterdir())} to {FIXTURE_DIR}")


if __name__ == "__main__":
    main()
