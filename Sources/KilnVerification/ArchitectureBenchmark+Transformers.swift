import Foundation
import KilnGraph
import KilnModels

/// The transformer denoisers' architectures for `kiln bench`, at the releases' sizes: DiT-XL/2
/// (class-conditional, SD's VAE), SD3 medium (CLIP-L + CLIP-G + T5-XXL, 16-channel VAE) and
/// FLUX.1-schnell (CLIP-L + T5-XXL, 2x2-packed latents, 16-channel VAE). Stage `unet` is the
/// denoiser, whatever its kind.
extension ArchitectureBenchmark {
    static let transformerArchitectures = ["dit-xl-2", "sd3-medium", "flux-schnell"]

    static func transformerStages(_ name: String, width: Int, height: Int, batch: Int) throws -> [BenchmarkStage] {
        guard width > 0, height > 0, width % 16 == 0, height % 16 == 0 else {
            throw GraphError("bench", "width \(width) and height \(height) must be positive multiples of 16 for \(name) (8x VAE, 2x2 patches)")
        }
        let (latentHeight, latentWidth) = (height / 8, width / 8)
        var random = SeededRandom(seed: 11)
        switch name {
        case "dit-xl-2":
            let vae = try StableDiffusionArchitecture.sd15().vae
            let latents = random.normals(batch * 4 * latentHeight * latentWidth)
            return [
                BenchmarkStage(name: "unet", work: .graph { graph, weights in
                    let dtype = weights.binder.dtype
                    let output = try DiTTransformer2DModel(configuration: DiTConfiguration(outChannels: 8, sampleSize: latentHeight))(
                        sample: graph.input("sample", [batch, 4, latentHeight, latentWidth], dtype: dtype),
                        timesteps: graph.input("t", [batch]), classLabels: graph.input("labels", [batch], dtype: .int32), weights: weights)
                    return BuiltGraph(outputs: [output.sample], inputs: [
                        "sample": HostTensor(shape: [batch, 4, latentHeight, latentWidth], scalars: latents, dtype: dtype),
                        "t": HostTensor(shape: [batch], scalars: .init(repeating: 500, count: batch)),
                        "labels": HostTensor(shape: [batch], integers: (0..<batch).map { Int32($0 == 0 ? 207 : 1000) }),
                    ], hostConstants: output.hostConstants)
                }),
                decodeStage(vae, latentChannels: 4, latentHeight: latentHeight, latentWidth: latentWidth, random: &random),
            ]
        case "sd3-medium":
            let transformer = SD3TransformerConfiguration(
                layerCount: 24, attentionHeads: 24, captionProjectionDimension: 1536, positionEmbeddingMaxSize: 192)
            // SD3 loads CLIP-L with its projection (CLIPTextModelWithProjection).
            var clipL = StableDiffusionArchitecture.clipL
            (clipL.projectionSize, clipL.architectures) = (768, ["CLIPTextModelWithProjection"])
            let latents = random.normals(batch * 16 * latentHeight * latentWidth)
            let context = random.normals(batch * (77 + 256) * 4096), pooled = random.normals(batch * 2048)
            return [
                textStage(clip: [clipL, StableDiffusionArchitecture.openCLIPBigG], t5Tokens: 256, batch: batch, random: &random),
                BenchmarkStage(name: "unet", work: .graph { graph, weights in
                    let dtype = weights.binder.dtype
                    let output = try SD3Transformer2DModel(configuration: transformer)(
                        hiddenStates: graph.input("sample", [batch, 16, latentHeight, latentWidth], dtype: dtype),
                        encoderHiddenStates: graph.input("context", [batch, 77 + 256, 4096], dtype: dtype),
                        pooledProjections: graph.input("pooled", [batch, 2048], dtype: dtype), timesteps: graph.input("t", [batch]), weights: weights)
                    return BuiltGraph(outputs: [output], inputs: [
                        "sample": HostTensor(shape: [batch, 16, latentHeight, latentWidth], scalars: latents, dtype: dtype),
                        "context": HostTensor(shape: [batch, 77 + 256, 4096], scalars: context, dtype: dtype),
                        "pooled": HostTensor(shape: [batch, 2048], scalars: pooled, dtype: dtype),
                        "t": HostTensor(shape: [batch], scalars: .init(repeating: 500, count: batch)),
                    ])
                }),
                decodeStage(try sixteenChannelVAE(scalingFactor: 1.5305, shiftFactor: 0.0609), latentChannels: 16,
                            latentHeight: latentHeight, latentWidth: latentWidth, random: &random),
            ]
        case "flux-schnell":
            let transformer = FluxTransformerConfiguration(guidanceEmbeds: false)
            let (rows, columns, textTokens) = (latentHeight / 2, latentWidth / 2, 256)
            let imageTokens = rows * columns
            // Text ids are zeros; image ids are (0, row, column) per 2x2 patch, as FluxPipeline builds them.
            let ids = [Float](repeating: 0, count: textTokens * 3)
                + (0..<imageTokens).flatMap { [0, Float($0 / columns), Float($0 % columns)] }
            let rotary = try FluxTransformer2DModel(configuration: transformer).rotaryEmbedding.tables(ids: ids, length: textTokens + imageTokens)
            let packed = random.normals(batch * imageTokens * 64)
            let context = random.normals(batch * textTokens * 4096), pooled = random.normals(batch * 768)
            return [
                textStage(clip: [StableDiffusionArchitecture.clipL], t5Tokens: textTokens, batch: batch, random: &random),
                BenchmarkStage(name: "unet", work: .graph { graph, weights in
                    let dtype = weights.binder.dtype
                    let output = try FluxTransformer2DModel(configuration: transformer)(
                        hiddenStates: graph.input("sample", [batch, imageTokens, 64], dtype: dtype),
                        encoderHiddenStates: graph.input("context", [batch, textTokens, 4096], dtype: dtype),
                        pooledProjections: graph.input("pooled", [batch, 768], dtype: dtype), timesteps: graph.input("t", [batch]),
                        rotaryCos: graph.input("cos", rotary.cos.shape), rotarySin: graph.input("sin", rotary.sin.shape), weights: weights)
                    return BuiltGraph(outputs: [output], inputs: [
                        "sample": HostTensor(shape: [batch, imageTokens, 64], scalars: packed, dtype: dtype),
                        "context": HostTensor(shape: [batch, textTokens, 4096], scalars: context, dtype: dtype),
                        "pooled": HostTensor(shape: [batch, 768], scalars: pooled, dtype: dtype),
                        "t": HostTensor(shape: [batch], scalars: .init(repeating: 0.5, count: batch)),
                        "cos": rotary.cos, "sin": rotary.sin,
                    ])
                }),
                decodeStage(try sixteenChannelVAE(scalingFactor: 0.3611, shiftFactor: 0.1159), latentChannels: 16,
                            latentHeight: latentHeight, latentWidth: latentWidth, random: &random),
            ]
        default:
            throw GraphError("bench", "unknown transformer architecture '\(name)'")
        }
    }

    /// The text encoders of SD3 / FLUX: CLIP encoders over 77 tokens and T5-XXL over `t5Tokens`.
    private static func textStage(clip: [CLIPTextConfiguration], t5Tokens: Int, batch: Int, random: inout SeededRandom) -> BenchmarkStage {
        let clipIDs = (0..<(batch * 77)).map { _ in Int32(random.next() % 49407) }
        let t5IDs = (0..<(batch * t5Tokens)).map { _ in Int32(random.next() % 32100) }
        let t5 = T5EncoderModel(configuration: .t5XXL)
        return BenchmarkStage(name: "text", work: .graph { graph, weights in
            let ids = graph.input("ids", [batch, 77], dtype: .int32), rows = graph.input("rows", [batch], dtype: .int32)
            var outputs: [Tensor] = []
            for (index, configuration) in clip.enumerated() {
                let states = try CLIPTextModel(configuration: configuration, prefix: "text_model.")(ids: ids, pooledRows: rows, weights: weights("clip_\(index)"))
                outputs += [states.hiddenState(skippingLast: 1), states.textEmbeddings ?? states.pooled]
            }
            outputs.append(try t5(ids: graph.input("t5_ids", [batch, t5Tokens], dtype: .int32),
                                  relativePositionBuckets: graph.input("buckets", [t5Tokens, t5Tokens], dtype: .int32), weights: weights("t5")))
            return BuiltGraph(outputs: outputs, inputs: [
                "ids": HostTensor(shape: [batch, 77], integers: clipIDs),
                "rows": HostTensor(shape: [batch], integers: CLIPTextModel.pooledRows(ids: clipIDs, sequenceLength: 77)),
                "t5_ids": HostTensor(shape: [batch, t5Tokens], integers: t5IDs), "buckets": t5.relativePositionBuckets(length: t5Tokens),
            ])
        })
    }

    private static func decodeStage(
        _ vae: AutoencoderKLConfiguration, latentChannels: Int, latentHeight: Int, latentWidth: Int, random: inout SeededRandom
    ) -> BenchmarkStage {
        BenchmarkStage(name: "vae", work: .autoencoderDecode(vae, latents: HostTensor(
            shape: [1, latentChannels, latentHeight, latentWidth], scalars: random.normals(latentChannels * latentHeight * latentWidth))))
    }

    /// SD3's and FLUX's VAE: SD's decoder on 16 latent channels, without the quant convolutions.
    private static func sixteenChannelVAE(scalingFactor: Float, shiftFactor: Float) throws -> AutoencoderKLConfiguration {
        let json: [String: Any] = [
            "in_channels": 3, "out_channels": 3, "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
            "latent_channels": 16, "norm_num_groups": 32, "scaling_factor": scalingFactor, "shift_factor": shiftFactor,
            "use_quant_conv": false, "use_post_quant_conv": false,
        ]
        return try JSONDecoder().decode(AutoencoderKLConfiguration.self, from: JSONSerialization.data(withJSONObject: json))
    }
}
