/// Prompts every tokenizer target encodes once its files have loaded: plain words, punctuation
/// and digits, special-token text, accents, CJK and an emoji, whitespace runs, and nothing.
enum TokenizerSamples {
    static let prompts = [
        "a large red circle on a blue background",
        "A photo of an astronaut, riding a horse (4k), <|startoftext|> </s> <pad> 1234.5 don't",
        "Crème brûlée  \t 東京タワー 😀\n\u{00A0}end",
        "",
    ]
}
