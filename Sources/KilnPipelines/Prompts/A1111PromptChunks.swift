import KilnModels

/// A prompt in A1111's syntax as CLIP token chunks: each fragment tokenized on its own, tokens
/// packed 75 to a chunk (a chunk that fills up mid-phrase moves back to just after its last
/// comma when that is at most 20 tokens back, A1111's default word wrap), `BREAK` starting a new
/// chunk; each chunk framed `[BOS] tokens [EOS] padding` to the encoder's context (77), with
/// every token's weight.
/// The encoder's states of each chunk are then weighted (`A1111Emphasis`) and the chunks'
/// states concatenated along the sequence.
public struct A1111PromptChunks: Sendable, Equatable {
    public struct Chunk: Sendable, Equatable {
        /// 77 ids.
        public var ids: [Int]
        /// 77 weights (1 for BOS, EOS and padding).
        public var weights: [Float]
    }

    /// Tokens a chunk holds: the text encoder's context less BOS and EOS (75 for CLIP's 77).
    public let tokensPerChunk: Int
    /// A1111's "prompt word wrap length limit".
    public static let commaBacktrack = 20

    public let chunks: [Chunk]

    public init(_ prompt: String, tokenizer: CLIPTokenizer) {
        self.init(fragments: A1111Prompt.parse(prompt), tokenizer: tokenizer)
    }

    public init(fragments: [A1111Prompt.Fragment], tokenizer: CLIPTokenizer) {
        let tokensPerChunk = max(tokenizer.configuration.modelMaxLength - 2, 1)
        self.tokensPerChunk = tokensPerChunk
        let comma = tokenizer.vocabulary[",</w>"]
        var chunks: [Chunk] = []
        var tokens: [Int] = [], weights: [Float] = []
        var lastComma = -1
        func close() {
            let missing = tokensPerChunk - tokens.count
            // EOS, then the tokenizer's padding (EOS itself for CLIP-L, "!" for OpenCLIP's).
            var ids = [tokenizer.bosTokenID] + tokens + [tokenizer.eosTokenID]
            ids += Array(repeating: tokenizer.padTokenID, count: max(missing, 0))
            chunks.append(Chunk(ids: ids, weights: [1] + weights + Array(repeating: 1, count: max(missing, 0) + 1)))
            tokens = []
            weights = []
            lastComma = -1
        }
        for fragment in fragments {
            if fragment.isBreak {
                close()
                continue
            }
            for token in tokenizer.tokenIDs(fragment.text) {
                if token == comma {
                    lastComma = tokens.count
                } else if tokens.count == tokensPerChunk, lastComma != -1, tokens.count - lastComma <= Self.commaBacktrack {
                    let moved = (Array(tokens[(lastComma + 1)...]), Array(weights[(lastComma + 1)...]))
                    tokens.removeLast(tokens.count - lastComma - 1)
                    weights.removeLast(weights.count - lastComma - 1)
                    close()
                    (tokens, weights) = moved
                }
                if tokens.count == tokensPerChunk { close() }
                tokens.append(token)
                weights.append(Float(fragment.weight))
            }
        }
        if !tokens.isEmpty || chunks.isEmpty { close() }
        self.chunks = chunks
    }

    /// Whether every weight is 1 (the chunks' states need no weighting).
    public var isUnweighted: Bool { chunks.allSatisfy { $0.weights.allSatisfy { $0 == 1 } } }
}

/// A1111's "Original" emphasis: a chunk's hidden states `[77, D]` multiplied by each token's
/// weight, then scaled so their mean over the whole chunk is what it was before.
public enum A1111Emphasis {
    /// `states` `[L, D]` (row-major) weighted by `weights` `[L]`, the mean restored.
    public static func apply(_ states: [Float], width: Int, weights: [Float]) -> [Float] {
        var original = 0.0, weighted = 0.0
        var result = states
        for row in 0..<weights.count {
            let weight = weights[row]
            for column in 0..<width {
                let index = row * width + column
                original += Double(states[index])
                result[index] = states[index] * weight
                weighted += Double(result[index])
            }
        }
        let ratio = Float(original / weighted)
        return result.map { $0 * ratio }
    }
}
