import Foundation
import Kiln

/// A T5 tokenizer folder with only the slow tokenizer's `spiece.model` (a SentencePiece
/// protobuf): the parts of one input are `spiece.model`, `tokenizer_config.json` and
/// `special_tokens_map.json`; the model is converted as transformers converts it, then sample
/// prompts are encoded.
enum SentencePieceTarget {
    static let fileNames = ["spiece.model", "tokenizer_config.json", "special_tokens_map.json"]

    static func run(_ data: Data) {
        let parts = FuzzParts.split(data, maximum: fileNames.count)
        let folder = ScratchFolder.write(zip(fileNames, parts).map { (path: $0, data: $1) })
        guard let tokenizer = try? T5Tokenizer(folder: folder) else { return }
        TokenizerSamples.encode(with: tokenizer)
    }
}
