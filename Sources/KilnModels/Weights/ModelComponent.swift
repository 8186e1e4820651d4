/// One model of a pipeline (a U-Net, a VAE, a text encoder, a transformer): what shapes it (its
/// `config.json`) and where its weights are, under the key names its model code reads
/// (diffusers' for U-Nets, VAEs and transformers, transformers' for text encoders).
public struct ModelComponent<Configuration: Sendable>: Sendable {
    public let configuration: Configuration
    public let weights: TensorSource

    public init(configuration: Configuration, weights: TensorSource) {
        self.configuration = configuration
        self.weights = weights
    }
}

extension ModelComponent where Configuration == UNetConfiguration {
    public var model: UNet2DConditionModel { UNet2DConditionModel(configuration: configuration) }
}

extension ModelComponent where Configuration == AutoencoderKLConfiguration {
    public var model: AutoencoderKL { AutoencoderKL(configuration: configuration) }
}

extension ModelComponent where Configuration == CLIPTextConfiguration {
    /// The key prefix of the transformer in `weights`: `text_model.`, or none in files saved without it.
    public var prefix: String { CLIPTextModel.detectPrefix(in: weights) }
    /// The encoder reading `weights` under `prefix`.
    public var model: CLIPTextModel { CLIPTextModel(configuration: configuration, prefix: prefix) }
}
