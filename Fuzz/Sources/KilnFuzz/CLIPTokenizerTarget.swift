import Foundation
import Kiln

/// A CLIP `tokenizer/` folder: the parts of one input are `vocab.json`, `merges.txt`,
/// `tokenizer_config.json` and `special_tokens_map.json` (the last two only when the input has
/// them); the folder is loaded as a pipeline loads it, then sample prompts are encoded.
enum CLIPTokenizerTarget {
    static let fileNames = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]

    static func run(_ data: Data) {
        let parts = FuzzParts.split(data, maximum: fileNames.count)
        let folder = ScratchFolder.write(zip(fileNames, parts).map { (path: $0, data: $1) })
        guard let tokenizer = try? CLIPTokenizer.load(folder: folder) else { return }
        for prompt in TokenizerSamples.prompts {
            _ = tokenizer.encode(prompt)
            _ = tokenizer.encoding(prompt, padding: false, truncation: false)
        }
    }
}
