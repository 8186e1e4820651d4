import Foundation
import Kiln

/// A1111's prompt syntax: emphasis `(a:1.2)`, `[b]`, escapes and `BREAK`, its plain text, the
/// `<lora:name:weight>` tags taken out of it, and the weighted 75-token chunks the built-in
/// model's CLIP tokenizer makes of it.
enum A1111PromptTarget {
    static func run(_ data: Data) {
        guard let prompt = FuzzParts.text(data) else { return }
        let fragments = A1111Prompt.parse(prompt)
        _ = A1111Prompt.plainText(prompt)
        _ = try? LoRAPromptTags.extract(from: prompt)
        _ = A1111PromptChunks(fragments: fragments, tokenizer: DefaultModelParts.tokenizer)
    }
}
