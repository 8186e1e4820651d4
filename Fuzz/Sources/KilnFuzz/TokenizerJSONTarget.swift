import Foundation
import Kiln

/// A T5 tokenizer folder with the fast tokenizer's `tokenizer.json`: the parts of one input are
/// `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json`; the folder is loaded
/// as SD3 and FLUX load `tokenizer_3/` and `tokenizer_2/`, then sample prompts are encoded.
enum TokenizerJSONTarget {
    static let fileNames = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]

    static func run(_ data: Data) {
        let parts = FuzzParts.split(data, maximum: fileNames.count)
        let folder = ScratchFolder.write(zip(fileNames, parts).map { (path: $0, data: $1) })
        guard let tokenizer = try? T5Tokenizer(folder: folder) else { return }
        TokenizerSamples.encode(with: tokenizer)
    }
}

extension TokenizerSamples {
    static func encode(with tokenizer: T5Tokenizer) {
        for prompt in prompts {
            _ = tokenizer.encode(prompt)
            _ = try? tokenizer.encode(prompt, maxLength: 16)
        }
    }
}
