import KilnGraph

/// When `TiledAutoencoder` splits its work into tiles.
public enum VAETilingMode: Sendable, Equatable {
    /// Tile only when the untiled graph's activations (`MemoryPlan.arenaBytes`) exceed
    /// `budgetBytes` (the backend's `activationBudgetBytes` when nil); start from `tiling` and
    /// halve the tile until one tile's activations fit.
    case automatic(budgetBytes: Int? = nil, tiling: VAETiling = VAETiling())
    /// One graph for the whole input, whatever it needs.
    case never
    /// Always these tiles (an input no larger than one tile is still a single tile).
    case always(VAETiling)
}

/// AutoencoderKL decoding and encoding on any backend, whole or in overlapping tiles blended as
/// diffusers' `tiled_decode` / `tiled_encode` do, so images larger than the device can hold in
/// one graph still decode.
///
/// Shapes: latents `[B, L, h, w]` -> image `[B, out, h*f, w*f]`; image `[B, 3, H, W]` -> mean and
/// log-variance `[B, L, H/f, W/f]`. One prepared graph per distinct tile shape (at most four: the
/// full tile and the smaller right, bottom and corner edges), cached and reused across calls;
/// every graph reads the same resident copy of the weights (`residency`).
public final class TiledAutoencoder {
    public let model: AutoencoderKL
    public let backend: Backend
    public let weights: TensorSource
    /// Storage type of weights and activations (the CPU backend computes in f32 regardless).
    public let dtype: DType
    public let mode: VAETilingMode
    /// Weight-key prefix of the VAE's tensors inside `weights` (empty for a diffusers vae folder).
    public let prefix: String

    /// A prepared graph for one input shape and what it costs.
    public struct Prepared {
        public let graph: any PreparedGraph
        /// FLOPs of one run (multiply-add = 2).
        public let flops: Double
    }

    /// Prepares a graph; replace it to profile (e.g. `VulkanBackend.prepareProfiled`).
    public typealias Preparer = (_ backend: Backend, _ graph: Graph, _ outputs: [Tensor], _ constants: any ConstantValues) throws -> any PreparedGraph

    /// The device copies of the weights, shared by every graph this autoencoder prepares.
    public let residency: ResidentWeights
    private let preparer: Preparer
    private let decoders: PreparedGraphCache<Shape, Prepared>
    private let encoders: PreparedGraphCache<Shape, Prepared>
    /// Tiling decisions per input shape: planning the untiled graph costs a graph build each time.
    private var decodeChoices: [Shape: VAETiling?] = [:]
    private var encodeChoices: [Shape: VAETiling?] = [:]
    /// Called after every tile (or whole-input) run with the graph that ran, e.g. to collect profiles.
    public var afterRun: ((any PreparedGraph) -> Void)?

    public init(
        model: AutoencoderKL, backend: Backend, weights: TensorSource, dtype: DType, mode: VAETilingMode = .automatic(),
        prefix: String = "", residency: ResidentWeights = ResidentWeights(label: "vae"), preparer: Preparer? = nil
    ) {
        self.model = model
        self.residency = residency
        // A tiled decode uses up to four tile shapes at once; a few image sizes stay prepared.
        decoders = PreparedGraphCache(capacity: 8, byteBudget: backend.activationBudgetBytes.multipliedReportingOverflow(by: 2).partialValue)
        encoders = PreparedGraphCache(capacity: 4, byteBudget: backend.activationBudgetBytes)
        self.backend = backend
        self.weights = weights
        self.dtype = dtype
        self.mode = mode
        self.prefix = prefix
        self.preparer = preparer ?? { backend, graph, outputs, constants in try backend.prepare(graph, outputs: outputs, constants: constants) }
    }

    /// Every graph still held (decoders, then encoders).
    public var preparedGraphs: [Prepared] { decoders.values + encoders.values }

    // MARK: Decoding

    /// The tiles used to decode latents of `latentShape`, or nil for one untiled graph.
    public func decodeTiling(latentShape: Shape) throws -> VAETiling? {
        if let cached = decodeChoices[latentShape] { return cached }
        let choice = try choose(inputShape: latentShape, layout: { $0.decodeLayout(downscaleFactor: model.configuration.downscaleFactor) }, build: buildDecoder)
        decodeChoices[latentShape] = .some(choice)
        return choice
    }

    /// Peak activation bytes of one untiled decoder graph for `latentShape` (nothing is prepared).
    public func decodeArenaBytes(latentShape: Shape) throws -> Int { try arenaBytes(latentShape, build: buildDecoder) }

    /// Prepares every graph that decoding `latentShape` needs (the cold start), without running.
    public func prepareDecoding(latentShape: Shape) throws {
        for shape in try decodeInputShapes(latentShape) { _ = try decoder(for: shape) }
    }

    /// FLOPs of decoding `latentShape`: the sum over every tile (overlaps count twice).
    public func decodeFlops(latentShape: Shape) throws -> Double {
        try decodeTileShapes(latentShape).reduce(0) { $0 + (try decoder(for: $1).flops) }
    }

    /// Latents `[B, L, h, w]` -> image `[B, out, h*f, w*f]` (f32 values).
    public func decode(_ latents: HostTensor) throws -> HostTensor {
        guard let tiling = try decodeTiling(latentShape: latents.shape) else { return try run(decoder(for: latents.shape), latents) }
        let layout = tiling.decodeLayout(downscaleFactor: model.configuration.downscaleFactor)
        try layout.validate(operation: "vae tiled decode")
        return try layout.apply(latents) { tile in try run(decoder(for: tile.shape), tile) }
    }

    // MARK: Encoding

    /// The tiles used to encode images of `imageShape`, or nil for one untiled graph.
    public func encodeTiling(imageShape: Shape) throws -> VAETiling? {
        if let cached = encodeChoices[imageShape] { return cached }
        let choice = try choose(inputShape: imageShape, layout: { $0.encodeLayout(downscaleFactor: model.configuration.downscaleFactor) }, build: buildEncoder)
        encodeChoices[imageShape] = .some(choice)
        return choice
    }

    /// Image `[B, C, H, W]` -> mean and log-variance `[B, L, H/f, W/f]` (log-variance clamped to
    /// [-30, 20] after blending, as diffusers' DiagonalGaussianDistribution does).
    public func encode(_ image: HostTensor) throws -> (mean: HostTensor, logVariance: HostTensor) {
        let moments: HostTensor
        if let tiling = try encodeTiling(imageShape: image.shape) {
            let layout = tiling.encodeLayout(downscaleFactor: model.configuration.downscaleFactor)
            try layout.validate(operation: "vae tiled encode")
            moments = try layout.apply(image) { tile in try run(encoder(for: tile.shape), tile) }
        } else {
            moments = try run(encoder(for: image.shape), image)
        }
        let halves = LatentHalves(moments)
        return (halves.first, halves.second.clamped(min: -30, max: 20))
    }

    // MARK: Graphs

    /// Input shape of every graph run that decoding `latentShape` makes, in raster order.
    private func decodeTileShapes(_ latentShape: Shape) throws -> [Shape] {
        guard let tiling = try decodeTiling(latentShape: latentShape) else { return [latentShape] }
        return tiling.decodeLayout(downscaleFactor: model.configuration.downscaleFactor).tileShapes(for: latentShape)
    }

    private func decodeInputShapes(_ latentShape: Shape) throws -> [Shape] { Self.distinct(try decodeTileShapes(latentShape)) }

    private static func distinct(_ shapes: [Shape]) -> [Shape] {
        var seen: Set<Shape> = []
        return shapes.filter { seen.insert($0).inserted }
    }

    private func buildDecoder(_ graph: Graph, _ binder: WeightBinder, _ shape: Shape) throws -> Tensor {
        try model.decode(graph.input("input", shape, dtype: dtype), weights: WeightScope(binder, prefix: prefix))
    }

    private func buildEncoder(_ graph: Graph, _ binder: WeightBinder, _ shape: Shape) throws -> Tensor {
        try model.moments(graph.input("input", shape, dtype: dtype), weights: WeightScope(binder, prefix: prefix))
    }

    private func decoder(for shape: Shape) throws -> Prepared {
        try decoders.value(for: shape, bytes: { $0.graph.memoryPlan.arenaBytes }) { try prepare(shape, build: buildDecoder) }
    }

    private func encoder(for shape: Shape) throws -> Prepared {
        try encoders.value(for: shape, bytes: { $0.graph.memoryPlan.arenaBytes }) { try prepare(shape, build: buildEncoder) }
    }

    private func prepare(_ shape: Shape, build: (Graph, WeightBinder, Shape) throws -> Tensor) throws -> Prepared {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: weights, dtype: dtype, residency: residency)
        let output = try build(graph, binder, shape)
        return Prepared(graph: try preparer(backend, graph, [output], binder.constants()), flops: graph.flops(of: [output]))
    }

    private func run(_ prepared: Prepared, _ input: HostTensor) throws -> HostTensor {
        var stored = input
        stored.dtype = dtype
        let outputs = try prepared.graph.run(["input": stored.roundedToStorage()])
        afterRun?(prepared.graph)
        guard let output = outputs.first else { throw GraphError("vae", "prepared graph returned no output") }
        return output
    }

    /// Peak activation bytes of the graph `build` makes for `shape`, planned as the backend will
    /// prepare it (its rewrites included) but without loading weights or preparing anything.
    private func arenaBytes(_ shape: Shape, build: (Graph, WeightBinder, Shape) throws -> Tensor) throws -> Int {
        let graph = Graph()
        let output = try build(graph, WeightBinder(graph: graph, source: weights, dtype: dtype), shape)
        return backend.plannedArenaBytes(graph, outputs: [output])
    }

    private func choose(
        inputShape: Shape, layout: (VAETiling) -> TileLayout, build: (Graph, WeightBinder, Shape) throws -> Tensor
    ) throws -> VAETiling? {
        switch mode {
        case .never:
            return nil
        case .always(let tiling):
            return layout(tiling).tile < max(inputShape[2], inputShape[3]) ? tiling : nil
        case .automatic(let budgetBytes, var tiling):
            let budget = budgetBytes ?? backend.activationBudgetBytes
            if try arenaBytes(inputShape, build: build) <= budget { return nil }
            // Below 4 latent pixels a tile's stride or blend rounds to nothing.
            let smallest = 4 * model.configuration.downscaleFactor
            while true {
                let tile = layout(tiling).tile
                let tileShape = Shape([inputShape[0], inputShape[1], min(tile, inputShape[2]), min(tile, inputShape[3])])
                if try arenaBytes(tileShape, build: build) <= budget { return tiling }
                guard tiling.sampleTileSize / 2 >= smallest else {
                    throw GraphError("vae", "even \(tiling.sampleTileSize)-pixel tiles of \(inputShape) need more than the \(budget)-byte activation budget")
                }
                tiling.sampleTileSize /= 2
            }
        }
    }
}

/// The two channel halves of `[B, 2L, h, w]` moments.
private struct LatentHalves {
    let first: HostTensor
    let second: HostTensor

    init(_ moments: HostTensor) {
        let (batch, channels, plane) = (moments.shape[0], moments.shape[1] / 2, moments.shape[2] * moments.shape[3])
        let shape = Shape([batch, channels, moments.shape[2], moments.shape[3]])
        var first: [Float] = [], second: [Float] = []
        for item in 0..<batch {
            let base = item * 2 * channels * plane
            first.append(contentsOf: moments.scalars[base..<(base + channels * plane)])
            second.append(contentsOf: moments.scalars[(base + channels * plane)..<(base + 2 * channels * plane)])
        }
        self.first = HostTensor(shape: shape, scalars: first)
        self.second = HostTensor(shape: shape, scalars: second)
    }
}

private extension HostTensor {
    func clamped(min lower: Float, max upper: Float) -> HostTensor {
        HostTensor(shape: shape, scalars: scalars.map { Swift.min(Swift.max($0, lower), upper) }, dtype: dtype)
    }
}
