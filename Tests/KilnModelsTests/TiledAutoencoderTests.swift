import Foundation
import Kiln
import Testing

/// Tiled VAE decoding and encoding against diffusers' own tiled_decode / tiled_encode on the tiny
/// SD1 VAE (`vae_tiled.*` records in sd1/components.safetensors): 32-pixel tiles, overlap 0.25,
/// a [1, 4, 11, 9] latent (4 x 3 tiles with smaller bottom and right edges) and a [1, 3, 72, 56]
/// image (3 x 3 tiles), so blending across rows, columns and edge tiles is all exercised.
@Suite(.serialized) struct TiledAutoencoderTests {
    static let folder = StableDiffusionComponentTests.folder("sd1", "vae")
    static let tiles = VAETiling(sampleTileSize: 32)

    static func model() throws -> (AutoencoderKL, TensorSource) {
        let configuration = try AutoencoderKLConfiguration.load(folder.appendingPathComponent("config.json"))
        return (AutoencoderKL(configuration: configuration), try SafeTensorsSource.component(folder: folder, baseName: "diffusion_pytorch_model"))
    }

    @Test func tiledDecodeMatchesDiffusers() throws {
        let records = try StableDiffusionComponentTests.records("sd1")
        let (model, weights) = try Self.model()
        for (backend, dtype, tolerance) in try StableDiffusionComponentTests.backends() {
            let autoencoder = TiledAutoencoder(model: model, backend: backend, weights: weights, dtype: dtype, mode: .always(Self.tiles))
            let decoded = try autoencoder.decode(try records("vae_tiled.latents"))
            StableDiffusionComponentTests.expectClose(decoded, try records("vae_tiled.decoded"), tolerance, "tiled decode \(backend.name) \(dtype.shortName)")
            // 4x4 tiles, 4x3 right edges, 2x4 bottom edges, one 2x3 corner: one graph each.
            #expect(autoencoder.preparedGraphs.count == 4)
        }
    }

    @Test func tiledEncodeMatchesDiffusers() throws {
        let records = try StableDiffusionComponentTests.records("sd1")
        let (model, weights) = try Self.model()
        for (backend, dtype, tolerance) in try StableDiffusionComponentTests.backends() {
            let autoencoder = TiledAutoencoder(model: model, backend: backend, weights: weights, dtype: dtype, mode: .always(Self.tiles))
            let (mean, logVariance) = try autoencoder.encode(try records("vae_tiled.image"))
            let label = "tiled encode \(backend.name) \(dtype.shortName)"
            StableDiffusionComponentTests.expectClose(mean, try records("vae_tiled.latent_mean"), tolerance, label + " mean")
            StableDiffusionComponentTests.expectClose(logVariance, try records("vae_tiled.latent_logvar"), tolerance, label + " logvar")
        }
    }

    /// A budget that holds one 4x4-latent tile but not 8x8 ones: automatic mode halves the
    /// 64-pixel starting tile to 32 and then reproduces diffusers' 32-pixel tiled decode.
    @Test func automaticTilingHalvesTheTileUntilItFits() throws {
        let records = try StableDiffusionComponentTests.records("sd1")
        let (model, weights) = try Self.model()
        let backend = CPUBackend()
        let probe = TiledAutoencoder(model: model, backend: backend, weights: weights, dtype: .float32, mode: .never)
        let budget = try probe.decodeArenaBytes(latentShape: [1, 4, 4, 4])
        #expect(try probe.decodeArenaBytes(latentShape: [1, 4, 8, 8]) > budget)

        let automatic = TiledAutoencoder(
            model: model, backend: backend, weights: weights, dtype: .float32,
            mode: .automatic(budgetBytes: budget, tiling: VAETiling(sampleTileSize: 64)))
        #expect(try automatic.decodeTiling(latentShape: [1, 4, 11, 9]) == Self.tiles)
        #expect(try automatic.decodeTiling(latentShape: [1, 4, 4, 3]) == nil)
        let decoded = try automatic.decode(try records("vae_tiled.latents"))
        StableDiffusionComponentTests.expectClose(decoded, try records("vae_tiled.decoded"), 1e-4, "automatic tiled decode")

        let roomy = TiledAutoencoder(model: model, backend: backend, weights: weights, dtype: .float32, mode: .automatic())
        #expect(try roomy.decodeTiling(latentShape: [1, 4, 11, 9]) == nil)
        let tooSmall = TiledAutoencoder(model: model, backend: backend, weights: weights, dtype: .float32, mode: .automatic(budgetBytes: 1))
        #expect(throws: GraphError.self) { try tooSmall.decodeTiling(latentShape: [1, 4, 11, 9]) }
    }

    /// Untiled (one graph) through TiledAutoencoder is bit-identical to building the decoder by hand.
    @Test func untiledDecodeEqualsThePlainDecoder() throws {
        let records = try StableDiffusionComponentTests.records("sd1")
        let (model, weights) = try Self.model()
        let latents = try records("vae_tiled.latents")
        let backend = CPUBackend()
        let whole = try TiledAutoencoder(model: model, backend: backend, weights: weights, dtype: .float32, mode: .never).decode(latents)
        let plain = try StableDiffusionComponentTests.run(source: weights, backend: backend, dtype: .float32, inputs: ["latents": latents]) { scope, x in
            [try model.decode(x["latents"]!, weights: scope)]
        }
        #expect(whole == plain[0])
        // Tiles differ from the whole (group norm statistics and attention are per tile), but only a little.
        let tiled = try TiledAutoencoder(model: model, backend: backend, weights: weights, dtype: .float32, mode: .always(Self.tiles)).decode(latents)
        #expect(tiled.shape == whole.shape)
        #expect(tiled != whole)
    }
}

extension TiledAutoencoderTests {
    /// FLOPs count every tile run: 12 tiles cost more than one untiled graph over the same latent.
    @Test func tiledFlopsCountEveryTile() throws {
        let (model, weights) = try Self.model()
        let backend = CPUBackend()
        let whole = try TiledAutoencoder(model: model, backend: backend, weights: weights, dtype: .float32, mode: .never)
            .decodeFlops(latentShape: [1, 4, 11, 9])
        let tiled = TiledAutoencoder(model: model, backend: backend, weights: weights, dtype: .float32, mode: .always(Self.tiles))
        let full = try tiled.decodeFlops(latentShape: [1, 4, 4, 4]), right = try tiled.decodeFlops(latentShape: [1, 4, 4, 3])
        let bottom = try tiled.decodeFlops(latentShape: [1, 4, 2, 4]), corner = try tiled.decodeFlops(latentShape: [1, 4, 2, 3])
        // Rows start at 0, 3, 6, 9 (the last 2 high), columns at 0, 3, 6 (the last 3 wide).
        #expect(try tiled.decodeFlops(latentShape: [1, 4, 11, 9]) == 3 * (2 * full + right) + (2 * bottom + corner))
        #expect(try tiled.decodeFlops(latentShape: [1, 4, 11, 9]) > whole)
    }
}
