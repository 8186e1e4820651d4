import Foundation
import KilnGraph
import KilnModels
import KilnVulkan

extension ArchitectureBenchmark {
    /// Times VAE decoding through `TiledAutoencoder`: the cold start prepares one graph per
    /// distinct tile shape and decodes once, each iteration decodes the whole latent (every tile, blending and
    /// stitching included), FLOPs and device bytes are summed over the tile graphs (all stay
    /// resident), and the profile adds up every tile's op timings of the last iteration.
    static func measureDecode(
        _ name: String, configuration: AutoencoderKLConfiguration, latents: HostTensor, weights: TensorSource, backend: Backend, dtype: DType,
        iterations: Int, warmup: Int, profile: Bool, activationBudgetBytes: Int?
    ) throws -> BenchmarkStageResult {
        let autoencoder = TiledAutoencoder(
            model: AutoencoderKL(configuration: configuration), backend: backend, weights: weights, dtype: dtype,
            mode: .automatic(budgetBytes: activationBudgetBytes),
            preparer: { backend, graph, outputs, constants in
                try prepare(backend: backend, graph: graph, outputs: outputs, constants: constants, profile: profile)
            })
        let start = Date()
        let tiling = try autoencoder.decodeTiling(latentShape: latents.shape)
        try autoencoder.prepareDecoding(latentShape: latents.shape)
        _ = try autoencoder.decode(latents)
        let coldStart = Date().timeIntervalSince(start)

        var iterationProfile: [OperationTiming] = []
        autoencoder.afterRun = { graph in iterationProfile += (graph as? VulkanPreparedGraph)?.lastProfile ?? [] }
        let times = try time(iterations: iterations, warmup: max(warmup - 1, 0)) {
            iterationProfile = []
            _ = try autoencoder.decode(latents)
        }
        let graphs = autoencoder.preparedGraphs
        return result(
            name, coldStart: coldStart, times: times, flops: try autoencoder.decodeFlops(latentShape: latents.shape),
            peakDeviceBytes: graphs.reduce(0) { $0 + (($1.graph as? VulkanPreparedGraph)?.deviceBytes ?? 0) },
            tiling: tiling.map { describe($0, latentShape: latents.shape, configuration: configuration, graphs: graphs.count) },
            profile: profile ? iterationProfile : nil)
    }

    private static func describe(_ tiling: VAETiling, latentShape: Shape, configuration: AutoencoderKLConfiguration, graphs: Int) -> String {
        let latentTile = tiling.latentTileSize(downscaleFactor: configuration.downscaleFactor)
        let stride = Int(Double(latentTile) * (1 - tiling.overlapFactor))
        let count = { (length: Int) in (length + stride - 1) / stride }
        return "\(count(latentShape[2]))x\(count(latentShape[3])) tiles of \(tiling.sampleTileSize) px, \(graphs) graphs"
    }
}
