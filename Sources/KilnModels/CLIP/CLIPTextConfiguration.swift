import Foundation

/// The fields of a transformers `CLIPTextConfig` (text_encoder/config.json) that shape the model.
public struct CLIPTextConfiguration: Codable, Sendable, Equatable {
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var maxPositionEmbeddings: Int
    public var activation: String
    public var layerNormEpsilon: Float
    /// `projection_dim`: width of `text_projection`, used only by CLIPTextModelWithProjection.
    public var projectionSize: Int?
    /// transformers' `architectures`, e.g. `["CLIPTextModelWithProjection"]`.
    public var architectures: [String]?

    /// Whether the checkpoint carries `text_projection` (SDXL's second encoder).
    public var hasProjection: Bool { architectures?.contains("CLIPTextModelWithProjection") ?? false }

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings"
        case activation = "hidden_act"
        case layerNormEpsilon = "layer_norm_eps"
        case projectionSize = "projection_dim"
        case architectures
    }

    public init(vocabularySize: Int = 49408, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int,
                maxPositionEmbeddings: Int = 77, activation: String, layerNormEpsilon: Float = 1e-5, projectionSize: Int? = nil,
                architectures: [String]? = nil) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.activation = activation
        self.layerNormEpsilon = layerNormEpsilon
        self.projectionSize = projectionSize
        self.architectures = architectures
    }

    /// Reads a config.json; errors name the file.
    public static func load(_ url: URL) throws -> CLIPTextConfiguration {
        do {
            return try JSONDecoder().decode(CLIPTextConfiguration.self, from: Data(contentsOf: url))
        } catch {
            throw ConfigurationError(file: url.path, message: "\(error)")
        }
    }
}

/// A config file that is missing, malformed or inconsistent with the weights.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}
