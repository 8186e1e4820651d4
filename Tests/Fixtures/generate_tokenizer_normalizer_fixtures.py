"""Write normalizer and pre-tokenizer fixtures for Kiln's tokenizer.json tests.

Rerun from the repository root (nothing is downloaded):

    python3 -m venv .venv
    .venv/bin/pip install -r Tests/Fixtures/requirements.txt
    .venv/bin/python Tests/Fixtures/generate_tokenizer_normalizer_fixtures.py

It needs the committed T5 fixture folder
Tests/KilnModelsTests/Fixtures/t5_tokenizer/tokenizer/ (spiece.model and its two
configuration files, written by generate_t5_tokenizer_fixtures.py, whose
prompt list it also reuses).

Every component is built with the `tokenizers` library (pinned below) and
serialized the way it writes tokenizer.json; Kiln parses that JSON and must
reproduce the recorded outputs exactly.

Output, in Tests/KilnModelsTests/Fixtures/tokenizer_components/:

  components.json
      {"versions": {...}, "texts": [...],
       "normalizers":    [{"name", "json", "outputs"}],
       "pre_tokenizers": [{"name", "json", "outputs"}],
       "pipelines":      [{"name", "normalizer", "pre_tokenizer", "pieces"}]}
      json      the component object exactly as tokenizers serializes it in
                tokenizer.json (`Tokenizer.to_str()`)
      outputs   per text: normalizers.X.normalize_str(text), or the piece strings
                of pre_tokenizers.X.pre_tokenize_str(text) (offsets left out)
      pieces    per text: the words a whole `Tokenizer` with that normalizer and
                pre-tokenizer hands its model (its added-token split slices the
                normalized text, which the Metaspace "first" scheme depends on).
                They are read back from `Tokenizer.encode(text)` with a Unigram
                model whose vocabulary holds single characters only, grouping
                the character tokens by `word_ids`.
      The `Precompiled` normalizer uses a small charsmap that sentencepiece
      builds from the rules in PRECOMPILED_RULES below.

  unicode_classes.json
      {"versions": {...}, "classes": {name: ranges}, "lowercase": mappings}
      Every scalar (surrogates excepted) run through one component each, to pin
      the library's character classes and their Unicode versions:
        classes    ranges ("0041-005A 00AA ...", hex) of the scalars c for which
                   the probe named holds (see CLASS_PROBES)
        lowercase  "0041:0061 0130:0069,0307 ...": normalizers.Lowercase on every
                   scalar it changes

  t5_nmt/         a T5TokenizerFast folder (tokenizer.json, tokenizer_config.json,
                  special_tokens_map.json): the committed spiece.model converted by
                  transformers (`T5TokenizerFast(from_slow=True)`), with the
                  normalizer and pre-tokenizer that tokenizers' own SentencePiece
                  Unigram tokenizer (`SentencePieceUnigramTokenizer`) writes:
                  Sequence[Nmt, NFKC, Replace(/ {2,}/, " ")] and Metaspace.
  t5_nmt_ids.json {"versions": {...}, "cases": [{"text", "ids", "first_ids"}]}
      ids        T5TokenizerFast.from_pretrained("t5_nmt")(text).input_ids
      first_ids  the same with the Metaspace prepend_scheme "first" (the only
                 change, made in the JSON text as the tests make it)

Output is deterministic: rerunning rewrites identical files.
"""

import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import sentencepiece
import tokenizers
import transformers
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.implementations import SentencePieceUnigramTokenizer
from tokenizers.models import Unigram
from transformers import CLIPTokenizer, CLIPTokenizerFast, T5TokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_t5_tokenizer_fixtures import PROMPTS as T5_PROMPTS  # noqa: E402

PINNED = {"transformers": "4.57.6", "tokenizers": "0.22.2", "sentencepiece": "0.2.3"}
FIXTURES = Path(__file__).resolve().parents[1] / "KilnModelsTests" / "Fixtures"
OUTPUT = FIXTURES / "tokenizer_components"
T5_FOLDER = FIXTURES / "t5_tokenizer" / "tokenizer"


def check_versions():
    found = {
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "sentencepiece": sentencepiece.__version__,
    }
    if found != PINNED:
        raise SystemExit(f"expected {PINNED}, found {found}: install Tests/Fixtures/requirements.txt")
    return found


LONG_TEXT = " ".join(
    f"word{index} Ünïcödé 漢字 {index * 37 % 1000} ,!? \t" for index in range(12)
)

# What every component is run on: one of each kind of trouble.
TEXTS = [
    "",
    " ",
    "   ",
    "a",
    "a photo of a cat",
    "A Photo Of An Astronaut Riding A Horse On Mars",
    # whitespace runs and kinds
    "  leading and trailing  ",
    "many     spaces     between",
    "tab\tand\t\ttabs",
    "line one\nline two\n\n\nline five",
    "windows\r\nline endings\r\n",
    "\t \n mixed \r\n whitespace \u000b\u000c end",
    "no\u00a0break\u00a0space and\u202fnarrow",
    "ideographic\u3000space\u3000\u3000twice",
    "em\u2003space thin\u2009space hair\u200aspace ogham\u1680mark",
    "line\u2028separator\u2029paragraph",
    "\u0085next line and \u001cfile separator",
    # zero-width and format characters
    "zero\u200bwidth\u200bspace",
    "zero\u200cwidth\u200dnon\u200ejoiner\u200fmarks",
    "byte order mark \ufeff inside and \ufeffat start",
    "\ufeffleading bom",
    "soft\u00adhyphen and word\u2060joiner",
    "\u200bleading zero width",
    # control characters
    "control\u0001char\u007fdel\u0008bs",
    "nul\u0000char and bell\u0007",
    "\u0001leading control",
    "\u0002\u0003 two leading controls then text",
    "c1 controls \u0080\u008f\u009f\u0090 here",
    "replacement \ufffd char",
    "private use \ue000\uf8ff",
    # Metaspace and replacement characters
    "\u2581already\u2581has\u2581metaspace",
    "\u2581",
    "\u2581\u2581double",
    " \u2581 mixed \u2581\u2581 ",
    "under_score and-dash",
    # punctuation and symbols
    "!!!???...,,,;;;:::",
    "hello!!! world??? wow!!!!!",
    "the-final--countdown",
    "-leading and trailing-",
    "a!b!c",
    "$+<=>^`|~ ascii symbols",
    "(parens) [brackets] {braces} <angles>",
    "\u201ccurly\u201d \u2018quotes\u2019 \u00abguillemets\u00bb \u2014 dash \u2026 ellipsis",
    "\u00bfque? \u00a1si! \u00b7 \u00a7 \u00b6 \u2020",
    "'s 't 're 've 'm 'll 'd contractions",
    "don't can't I'M YOU'RE we've they'll she'd",
    "https://example.com/path?query=1&other=two#anchor",
    "def f(x): return x**2 + 1",
    # digits and numbers
    "1234567890",
    "3.14159 -42 +7 1e-10 0x1F 1,000,000",
    "in 2077, 100% pure, $19.99, 50/50",
    "123abc456def",
    "\u0663\u0664\u0665 arabic-indic \u096b\u096c devanagari \u0e51\u0e52 thai",
    "\u00bd \u00be \u00b2 \u00b3 \u00b9 \u2077 \u2168 \u2460 \u2469",
    "\uff11\uff12\uff13 fullwidth digits",
    # accents, case and normalization forms
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 jalape\u00f1o",
    "cafe\u0301 nai\u0308ve decomposed",
    "CAF\u00c9 NA\u00cfVE",
    "e\u0301\u0301 double accent and \u0301 leading mark",
    "q\u0307\u0323 reorder marks and a\u0328\u0301",
    "\u1e9b\u0323 long s with dots",
    "\u00c5ngstr\u00f6m \u212b sign \u2126 ohm \u212a kelvin",
    "\u0130stanbul I\u0307 ISTANBUL \u0131i",
    "\u01c4emal \u01c5emal \u01c6emal",
    "\u03a3\u0399\u03a3\u03a5\u03a6\u039f\u03a3 final sigma \u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3",
    "Stra\u00dfe STRASSE \u1e9e",
    "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \uff2c\uff21\uff34\uff29\uff2e",
    "\ufb01ne \ufb02ower \ufb00",
    "\uff76\uff9e \uff8a\uff9f half-width kana",
    "\u1100\u1161\u11a8 jamo and \uac00\u11a8 lv plus t",
    "\u0f73 \u0f75 \u0f81 tibetan and \u0f40\u0f71\u0f72",
    "\u2460\u2461 \u24b6 \u3231 \u337f \u2122 \u00a9 \u33a1",
    "\U0001d400\U0001d401 math bold and \U0001d7d9",
    "\u0344 \u0340 \u0958 singletons and exclusions",
    # newer characters (the library's tables are older than the platform's)
    "\u32ff reiwa \U0001f16c mr sign \U00011938 dives akuru",
    "\u1cf2\u1cf3 vedic \u166d chi sign \U000111c9 sharada",
    "\u08e2 disputed \u0890 pound mark \u1734 \u1885",
    "\U0001fae8 shaking face \U0001f979 \u0889 arabic",
    "\U0002b820 \U0002b91f \U0002b920 ext e",
    "\u1acf \U00011f00 \U0001e4d0 newer marks and letters",
    # CJK and other scripts
    "\u4e00\u53ea\u53ef\u7231\u7684\u732b",
    "\u5b87\u5b99\u98db\u884c\u58eb\u304c\u99ac\u306b\u4e57\u3063\u3066\u3044\u308b",
    "\uace0\uc591\uc774 \uc0ac\uc9c4",
    "\u4e2d\u6587English\u6df7\u5408",
    "\U00020000\U00020001 \u3400 \uf900 \U0002f800 cjk blocks",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd",
    "\u041f\u0440\u0438\u0432\u0435\u0442 \u041c\u0418\u0420",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    # emoji
    "a cat \U0001f431 and a dog \U0001f436",
    "family \U0001f468\u200d\U0001f469\u200d\U0001f467 and \u2764\ufe0f vs \u2764",
    "flags \U0001f1fa\U0001f1f8 \U0001f3f3\ufe0f\u200d\U0001f308 keycap 1\ufe0f\u20e3",
    "skin \U0001f44b\U0001f3fb\U0001f44b\U0001f3ff",
    "\U0001f600\U0001f603\U0001f604\U0001f601",
    # long text
    LONG_TEXT,
]

# Normalization rules for the small `Precompiled` charsmap: tab-separated source
# and target code points (hex), as sentencepiece's normalization_rule_tsv reads them.
PRECOMPILED_RULES = [
    ("41", "61"),  # A -> a
    ("42", "62 62"),  # B -> bb (longer)
    ("FB01", "66 69"),  # fi ligature -> fi
    ("200B", ""),  # zero width space -> nothing
    ("FEFF", ""),  # byte order mark -> nothing
    ("2460", "31"),  # circled one -> 1
    ("E9", "65 301"),  # é -> e + combining acute
    ("65 301", "45"),  # e + combining acute (one cluster) -> E
    ("D A", "20"),  # CR LF (one cluster) -> space
    ("FF76 FF9E", "30AC"),  # half-width ga (six bytes, so never used)
    ("3000", "20"),  # ideographic space -> space
]


def precompiled_charsmap():
    """A sentencepiece model trained with PRECOMPILED_RULES; returns its charsmap."""
    from sentencepiece import sentencepiece_model_pb2

    scratch = Path(tempfile.mkdtemp())
    try:
        rules = scratch / "rules.tsv"
        rules.write_text("".join(f"{source}\t{target}\n" for source, target in PRECOMPILED_RULES))
        model = io.BytesIO()
        lines = ["a photo of a cat", "hello world", "the quick brown fox jumps"] * 40
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            model_type="unigram",
            vocab_size=40,
            hard_vocab_limit=False,
            normalization_rule_tsv=str(rules),
            num_threads=1,
            minloglevel=2,
        )
    finally:
        shutil.rmtree(scratch)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


CLIP_BYTE_ORDER = (
    list(range(ord("!"), ord("~") + 1))
    + list(range(ord("\u00a1"), ord("\u00ac") + 1))
    + list(range(ord("\u00ae"), ord("\u00ff") + 1))
)


def clip_fast_components():
    """The normalizer and pre-tokenizer transformers' CLIP converter writes (the vocabulary
    does not affect them, so a minimal one is used)."""
    scratch = Path(tempfile.mkdtemp())
    try:
        symbols = [chr(b) for b in CLIP_BYTE_ORDER]
        shift = 0
        for byte in range(256):
            if byte not in CLIP_BYTE_ORDER:
                symbols.append(chr(256 + shift))
                shift += 1
        tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
        (scratch / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        (scratch / "merges.txt").write_text("#version: 0.2\n")
        slow = CLIPTokenizer(vocab_file=str(scratch / "vocab.json"), merges_file=str(scratch / "merges.txt"))
        slow.save_pretrained(scratch / "slow")
        fast = CLIPTokenizerFast.from_pretrained(scratch / "slow", from_slow=True)
        backend = fast.backend_tokenizer
        return backend.normalizer, backend.pre_tokenizer
    finally:
        shutil.rmtree(scratch)


def normalizer_table(charsmap, clip_normalizer):
    n = normalizers
    sentencepiece_unigram = SentencePieceUnigramTokenizer()
    return [
        ("NFC", n.NFC()),
        ("NFD", n.NFD()),
        ("NFKC", n.NFKC()),
        ("NFKD", n.NFKD()),
        ("Lowercase", n.Lowercase()),
        ("Strip both", n.Strip()),
        ("Strip left", n.Strip(left=True, right=False)),
        ("Strip right", n.Strip(left=False, right=True)),
        ("StripAccents", n.StripAccents()),
        ("NFD + StripAccents", n.Sequence([n.NFD(), n.StripAccents()])),
        ("NFKD + StripAccents + Lowercase", n.Sequence([n.NFKD(), n.StripAccents(), n.Lowercase()])),
        ("Replace string", n.Replace("  ", " ")),
        ("Replace empty string", n.Replace("", "|")),
        ("Replace regex spaces", n.Replace(Regex(" {2,}"), "\u2581")),
        ("Replace regex whitespace", n.Replace(Regex(r"\s+"), " ")),
        ("Replace regex digits", n.Replace(Regex(r"\d"), "#")),
        ("Replace regex non-word", n.Replace(Regex(r"[^\w\s]+"), "")),
        ("Replace regex optional", n.Replace(Regex("a*"), "-")),
        ("Replace regex anchors", n.Replace(Regex("^ +| +$"), "")),
        ("Prepend", n.Prepend("\u2581")),
        ("Prepend two characters", n.Prepend("ab")),
        ("Precompiled", n.Precompiled(charsmap)),
        ("Nmt", n.Nmt()),
        ("BertNormalizer", n.BertNormalizer()),
        ("BertNormalizer cased", n.BertNormalizer(lowercase=False)),
        ("BertNormalizer lowercase keep accents", n.BertNormalizer(strip_accents=False, lowercase=True)),
        ("BertNormalizer strip accents only", n.BertNormalizer(strip_accents=True, lowercase=False)),
        ("BertNormalizer no cleanup", n.BertNormalizer(clean_text=False, handle_chinese_chars=False)),
        ("ByteLevel", n.ByteLevel()),
        ("T5 converter without charsmap", n.Sequence([n.Strip(left=False, right=True), n.Replace(Regex(" {2,}"), "\u2581")])),
        ("SentencePieceUnigramTokenizer", sentencepiece_unigram.normalizer),
        ("Nmt + NFKC + Replace + Lowercase", n.Sequence([n.Nmt(), n.NFKC(), n.Replace(Regex(" {2,}"), " "), n.Lowercase()])),
        ("CLIPTokenizerFast", clip_normalizer),
        ("Sequence empty", n.Sequence([])),
    ]


def pre_tokenizer_table(clip_pre_tokenizer):
    p = pre_tokenizers
    sentencepiece_unigram = SentencePieceUnigramTokenizer()
    gpt2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
    table = [
        ("Metaspace", p.Metaspace()),
        ("Metaspace first", p.Metaspace(prepend_scheme="first")),
        ("Metaspace never", p.Metaspace(prepend_scheme="never")),
        ("Metaspace no split", p.Metaspace(split=False)),
        ("Metaspace underscore", p.Metaspace(replacement="_")),
        ("SentencePieceUnigramTokenizer", sentencepiece_unigram.pre_tokenizer),
        ("WhitespaceSplit", p.WhitespaceSplit()),
        ("Whitespace", p.Whitespace()),
        ("BertPreTokenizer", p.BertPreTokenizer()),
        ("CharDelimiterSplit", p.CharDelimiterSplit("-")),
        ("Digits", p.Digits()),
        ("Digits individual", p.Digits(individual_digits=True)),
        ("ByteLevel", p.ByteLevel()),
        ("ByteLevel no prefix", p.ByteLevel(add_prefix_space=False)),
        ("ByteLevel no regex", p.ByteLevel(add_prefix_space=False, use_regex=False)),
        ("ByteLevel prefix no regex", p.ByteLevel(add_prefix_space=True, use_regex=False, trim_offsets=False)),
        ("Split regex GPT-2", p.Split(Regex(gpt2), "isolated")),
        ("Split regex whitespace removed", p.Split(Regex(r"\s+"), "removed")),
        ("Split regex words inverted", p.Split(Regex(r"\w+|[^\w\s]+"), "removed", invert=True)),
        ("Split regex digits", p.Split(Regex(r"\d{1,3}"), "isolated")),
        ("Split regex optional", p.Split(Regex("b*"), "merged_with_previous")),
        ("Split regex line anchors", p.Split(Regex("^."), "isolated")),
        ("Split empty string", p.Split("", "isolated")),
        ("CLIPTokenizerFast", clip_pre_tokenizer),
        ("Metaspace + Digits + Punctuation", p.Sequence(
            [p.Metaspace(), p.Digits(individual_digits=True), p.Punctuation()])),
        ("WhitespaceSplit + Metaspace", p.Sequence([p.WhitespaceSplit(), p.Metaspace()])),
        ("Sequence empty", p.Sequence([])),
    ]
    for behavior in ["removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous"]:
        table.append((f"Split string {behavior}", p.Split("-", behavior)))
        table.append((f"Split string {behavior} inverted", p.Split("-", behavior, invert=True)))
        table.append((f"Punctuation {behavior}", p.Punctuation(behavior)))
    return table


def component_json(normalizer=None, pre_tokenizer=None):
    """The component as tokenizers writes it into tokenizer.json."""
    tokenizer = Tokenizer(Unigram())
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    if pre_tokenizer is not None:
        tokenizer.pre_tokenizer = pre_tokenizer
    serialized = json.loads(tokenizer.to_str())
    return serialized["normalizer"] if normalizer is not None else serialized["pre_tokenizer"]


def pipeline_table(charsmap, clip_normalizer, clip_pre_tokenizer):
    n, p = normalizers, pre_tokenizers
    sentencepiece_unigram = SentencePieceUnigramTokenizer()
    first = p.Metaspace(prepend_scheme="first")
    return [
        ("SentencePieceUnigramTokenizer", sentencepiece_unigram.normalizer, sentencepiece_unigram.pre_tokenizer),
        ("SentencePieceUnigramTokenizer first", sentencepiece_unigram.normalizer, first),
        ("Nmt + NFKC + Replace + Lowercase, Metaspace + Digits + Punctuation",
         n.Sequence([n.Nmt(), n.NFKC(), n.Replace(Regex(" {2,}"), " "), n.Lowercase()]),
         p.Sequence([p.Metaspace(), p.Digits(individual_digits=True), p.Punctuation()])),
        ("Precompiled, Strip, Replace, Metaspace first",
         n.Sequence([n.Precompiled(charsmap), n.Strip(left=False, right=True), n.Replace(Regex(" {2,}"), "\u2581")]),
         first),
        ("Strip, Metaspace first", n.Strip(), first),
        ("NFKD + StripAccents, Metaspace first", n.Sequence([n.NFKD(), n.StripAccents()]), first),
        ("NFD, Split marks, Metaspace first", n.NFD(), p.Sequence([p.Split(Regex(r"\p{M}"), "isolated"), first])),
        ("Replace leading spaces, Metaspace first", n.Replace(Regex("^ +"), "x"), first),
        ("BertNormalizer, WhitespaceSplit + Metaspace first", n.BertNormalizer(), p.Sequence([p.WhitespaceSplit(), first])),
        ("Prepend + Replace (Llama), no pre-tokenizer", n.Sequence([n.Prepend("\u2581"), n.Replace(" ", "\u2581")]), None),
        ("Nmt + Prepend, Metaspace first", n.Sequence([n.Nmt(), n.Prepend("x")]), first),
        ("CLIPTokenizerFast", clip_normalizer, clip_pre_tokenizer),
        ("ByteLevel, Metaspace first", n.ByteLevel(), first),
    ]


def pipeline_pieces(normalizer, pre_tokenizer, texts):
    """The words a Tokenizer hands its model, read back through a character vocabulary."""
    characters = set("\u2581")
    for text in texts:
        normalized = normalizer.normalize_str(text) if normalizer is not None else text
        characters.update(normalized)
        if pre_tokenizer is not None:
            for piece, _ in pre_tokenizer.pre_tokenize_str(normalized):
                characters.update(piece)
    vocabulary = [("<unk>", 0.0)] + [(character, -1.0) for character in sorted(characters)]
    tokenizer = Tokenizer(Unigram(vocabulary, unk_id=0))
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    if pre_tokenizer is not None:
        tokenizer.pre_tokenizer = pre_tokenizer
    result = []
    for text in texts:
        encoding = tokenizer.encode(text)
        assert 0 not in encoding.ids, (text, encoding.tokens)
        words = []
        for token, word in zip(encoding.tokens, encoding.word_ids):
            if word is None:
                continue
            while len(words) <= word:
                words.append("")
            words[word] += token
        assert all(words), (text, words)
        result.append(words)
    return result


def class_probes():
    """Per-scalar tests, each through one tokenizers component."""
    n, p = normalizers, pre_tokenizers
    whitespace_split, digits, punctuation = p.WhitespaceSplit(), p.Digits(individual_digits=True), p.Punctuation()
    whitespace, byte_level = p.Whitespace(), p.ByteLevel(add_prefix_space=False)
    clean = n.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    chinese = n.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    bert_strip = n.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    strip_accents, nmt = n.StripAccents(), n.Nmt()

    def pieces(pre_tokenizer, text):
        return len(pre_tokenizer.pre_tokenize_str(text))

    return {
        "WhitespaceSplit splits on it": lambda c: pieces(whitespace_split, "a" + c + "a") == 2,
        "Digits isolates it": lambda c: pieces(digits, "a" + c + "a") == 3,
        "Punctuation isolates it": lambda c: pieces(punctuation, "a" + c + "a") == 3,
        "Whitespace keeps it in a word": lambda c: [x for x, _ in whitespace.pre_tokenize_str("a" + c)] == ["a" + c],
        "ByteLevel takes it as a letter": lambda c: pieces(byte_level, "x" + c) == 1,
        "ByteLevel takes it as a number": lambda c: pieces(byte_level, "1" + c) == 1,
        "ByteLevel takes it as other": lambda c: pieces(byte_level, "!" + c) == 1,
        "BertNormalizer clean_text removes it": lambda c: clean.normalize_str(c) == "",
        "BertNormalizer clean_text spaces it": lambda c: c != " " and clean.normalize_str(c) == " ",
        "BertNormalizer spaces it as Chinese": lambda c: chinese.normalize_str(c) == " " + c + " ",
        "BertNormalizer strip_accents removes it": lambda c: bert_strip.normalize_str(c) == "",
        "StripAccents removes it": lambda c: strip_accents.normalize_str(c) == "",
        "Nmt removes it": lambda c: nmt.normalize_str(c) == "",
        "Nmt spaces it": lambda c: c != " " and nmt.normalize_str(c) == " ",
    }


def unicode_class_fixture(versions):
    """Every scalar through each class probe, and Lowercase on every scalar."""
    scalars = [value for value in range(0x110000) if not 0xD800 <= value <= 0xDFFF]
    classes = {}
    for name, probe in class_probes().items():
        ranges = []
        for value in scalars:
            if probe(chr(value)):
                if ranges and ranges[-1][1] == value - 1:
                    ranges[-1][1] = value
                else:
                    ranges.append([value, value])
        classes[name] = " ".join(f"{a:04X}" if a == b else f"{a:04X}-{b:04X}" for a, b in ranges)
    lowercase = normalizers.Lowercase()
    mappings = []
    for value in scalars:
        mapped = lowercase.normalize_str(chr(value))
        if mapped != chr(value):
            mappings.append(f"{value:04X}:" + ",".join(f"{ord(c):04X}" for c in mapped))
    fixture = {"versions": versions, "classes": classes, "lowercase": " ".join(mappings)}
    text = json.dumps(fixture, ensure_ascii=True, indent=1)
    (OUTPUT / "unicode_classes.json").write_text(text + "\n", encoding="utf-8")
    return len(classes)


def t5_nmt_fixture(versions):
    """The T5 tokenizer folder with tokenizers' SentencePiece Unigram normalizer, and its ids."""
    output = OUTPUT / "t5_nmt"
    if output.exists():
        shutil.rmtree(output)
    scratch = Path(tempfile.mkdtemp())
    try:
        for name in ("spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(T5_FOLDER / name, scratch / name)
        converted = T5TokenizerFast.from_pretrained(scratch, from_slow=True)
        reference = SentencePieceUnigramTokenizer()
        backend = converted.backend_tokenizer
        backend.normalizer = reference.normalizer
        backend.pre_tokenizer = reference.pre_tokenizer
        backend.decoder = reference.decoder
        # A fast tokenizer around that backend, saved by transformers. (Re-saving `converted`
        # would keep "add_prefix_space" in tokenizer_config.json, which makes T5TokenizerFast
        # convert spiece.model again on load instead of reading tokenizer.json.)
        wrapped = T5TokenizerFast(
            tokenizer_object=backend, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
            extra_ids=100, additional_special_tokens=converted.additional_special_tokens)
        wrapped.save_pretrained(output)
        assert sorted(path.name for path in output.iterdir()) == [
            "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]

        fast = T5TokenizerFast.from_pretrained(output)
        saved = json.loads((output / "tokenizer.json").read_text(encoding="utf-8"))
        assert [step["type"] for step in saved["normalizer"]["normalizers"]] == ["Nmt", "NFKC", "Replace"]
        assert saved["pre_tokenizer"]["type"] == "Metaspace"
        assert saved["pre_tokenizer"]["prepend_scheme"] == "always"

        # The "first" variant, edited in the JSON text as the Swift test edits it.
        text = (output / "tokenizer.json").read_text(encoding="utf-8")
        marker = '"prepend_scheme": "always"'
        start = text.index('"pre_tokenizer"')
        position = text.index(marker, start)
        first_folder = scratch / "first"
        first_folder.mkdir()
        (first_folder / "tokenizer.json").write_text(
            text[:position] + '"prepend_scheme": "first"' + text[position + len(marker):], encoding="utf-8")
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(output / name, first_folder / name)
        first = T5TokenizerFast.from_pretrained(first_folder)
        assert json.loads(first.backend_tokenizer.to_str())["pre_tokenizer"]["prepend_scheme"] == "first"
    finally:
        shutil.rmtree(scratch)

    texts = list(dict.fromkeys(list(T5_PROMPTS) + TEXTS))
    cases = [{"text": t, "ids": fast(t).input_ids, "first_ids": first(t).input_ids} for t in texts]
    assert any(case["ids"] != case["first_ids"] for case in cases)
    fixture = {"versions": versions, "cases": cases}
    text = json.dumps(fixture, ensure_ascii=False, separators=(",", ":"))
    (OUTPUT / "t5_nmt_ids.json").write_text(text.replace(',{"text"', ',\n{"text"') + "\n", encoding="utf-8")
    return len(cases)


def main():
    versions = check_versions()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    assert len(TEXTS) == len(set(TEXTS))
    charsmap = precompiled_charsmap()
    clip_normalizer, clip_pre_tokenizer = clip_fast_components()

    normalizer_entries = []
    for name, normalizer in normalizer_table(charsmap, clip_normalizer):
        outputs = [normalizer.normalize_str(text) for text in TEXTS]
        normalizer_entries.append({"name": name, "json": component_json(normalizer=normalizer), "outputs": outputs})
    pre_tokenizer_entries = []
    for name, pre_tokenizer in pre_tokenizer_table(clip_pre_tokenizer):
        outputs = [[piece for piece, _ in pre_tokenizer.pre_tokenize_str(text)] for text in TEXTS]
        pre_tokenizer_entries.append(
            {"name": name, "json": component_json(pre_tokenizer=pre_tokenizer), "outputs": outputs})
    pipeline_entries = []
    for name, normalizer, pre_tokenizer in pipeline_table(charsmap, clip_normalizer, clip_pre_tokenizer):
        pipeline_entries.append({
            "name": name,
            "normalizer": component_json(normalizer=normalizer) if normalizer is not None else None,
            "pre_tokenizer": component_json(pre_tokenizer=pre_tokenizer) if pre_tokenizer is not None else None,
            "pieces": pipeline_pieces(normalizer, pre_tokenizer, TEXTS),
        })

    fixture = {
        "versions": versions,
        "texts": TEXTS,
        "normalizers": normalizer_entries,
        "pre_tokenizers": pre_tokenizer_entries,
        "pipelines": pipeline_entries,
    }
    text = json.dumps(fixture, ensure_ascii=False, separators=(",", ":"))
    # One component per line keeps diffs readable.
    text = text.replace(',{"name"', ',\n{"name"')
    (OUTPUT / "components.json").write_text(text + "\n", encoding="utf-8")
    t5_cases = t5_nmt_fixture(versions)
    class_count = unicode_class_fixture(versions)
    print(
        f"wrote {len(normalizer_entries)} normalizers, {len(pre_tokenizer_entries)} pre-tokenizers, "
        f"{len(pipeline_entries)} pipelines on {len(TEXTS)} texts, {t5_cases} T5 cases and "
        f"{class_count} character classes to {OUTPUT}")


if __name__ == "__main__":
    main()
