"""A small CLIP byte-level BPE vocabulary learnt from the scene grammar's words.

The files follow CLIP's layout exactly, so any CLIP tokenizer reads them:
vocab.json holds the 256 byte symbols (in the byte-to-symbol table's order), the
same 256 with the end-of-word suffix, one entry per merge (the two halves joined)
and last <|startoftext|> and <|endoftext|>; merges.txt holds a version header and
one merge per line. Merges are learnt by plain BPE on the grammar's words until
every word is a single token; any other text still encodes, byte by byte.
"""

import json
import os
from collections import Counter

END_OF_WORD = "</w>"
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"


def byte_symbols():
    """CLIP/GPT-2's reversible byte -> printable character table, in vocabulary order.

    Bytes that are printable Latin-1 characters map to themselves; the rest (controls, space,
    soft hyphen, ...) map in byte order to the code points from 256 upwards.
    """
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    order = printable + [b for b in range(256) if b not in printable]
    return [(b, table[b]) for b in order]


def word_symbols(word):
    table = dict(byte_symbols())
    symbols = [table[b] for b in word.encode("utf-8")]
    symbols[-1] += END_OF_WORD
    return symbols


def learn_merges(words):
    """BPE on a word -> frequency table until every word is one symbol. Deterministic."""
    segmented = {word: word_symbols(word) for word in words}
    merges = []
    while True:
        pairs = Counter()
        for word, count in words.items():
            symbols = segmented[word]
            for a, b in zip(symbols, symbols[1:]):
                pairs[(a, b)] += count
        if not pairs:
            return merges
        best = max(pairs.items(), key=lambda item: (item[1], [-ord(c) for c in item[0][0] + " " + item[0][1]]))[0]
        merges.append(best)
        for word, symbols in segmented.items():
            merged = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            segmented[word] = merged


def build_vocabulary(merges):
    tokens = [symbol for _, symbol in byte_symbols()]
    tokens += [symbol + END_OF_WORD for symbol in tokens[:256]]
    tokens += [a + b for a, b in merges]
    tokens += [START_TOKEN, END_TOKEN]
    vocabulary = {token: index for index, token in enumerate(tokens)}
    if len(vocabulary) != len(tokens):
        raise ValueError("merges produce a duplicate token")
    return vocabulary


def write_tokenizer(folder, words, model_max_length=77):
    """Writes vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json."""
    os.makedirs(folder, exist_ok=True)
    merges = learn_merges(words)
    vocabulary = build_vocabulary(merges)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocabulary, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    special = {"bos_token": START_TOKEN, "eos_token": END_TOKEN, "pad_token": END_TOKEN, "unk_token": END_TOKEN}
    config = dict(special)
    config.update({
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "errors": "replace",
        "model_max_length": model_max_length,
        "tokenizer_class": "CLIPTokenizer",
    })
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(folder, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(special, f, indent=2)
        f.write("\n")
    return vocabulary, merges


def check_tokenizer(folder, prompts, words):
    """Loads the folder with transformers' CLIPTokenizer and CLIPTokenizerFast and checks that they
    agree on every prompt (padded ids too) and that each grammar word is a single token."""
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    slow = CLIPTokenizer.from_pretrained(folder)
    fast = CLIPTokenizerFast.from_pretrained(folder)
    extra = ["", "A LARGE Red circle, on a BLUE background!", "an unknown word 123 çà"]
    for text in list(prompts) + extra:
        a = slow(text, padding="max_length", truncation=True).input_ids
        b = fast(text, padding="max_length", truncation=True).input_ids
        if a != b:
            raise AssertionError(f"CLIPTokenizer and CLIPTokenizerFast disagree on {text!r}: {a} vs {b}")
    for word in words:
        pieces = slow.tokenize(word)
        if pieces != [word + END_OF_WORD]:
            raise AssertionError(f"{word!r} is not one token: {pieces}")
    return len(slow)
