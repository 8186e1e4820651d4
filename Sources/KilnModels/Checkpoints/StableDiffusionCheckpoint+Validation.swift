import KilnGraph

extension StableDiffusionCheckpoint {
    /// Builds every component's graph on minimal inputs (no tensor data is read), so that a
    /// missing or mis-shaped weight is reported now as a `WeightError` naming the file, the tensor,
    /// and the expected and found shapes, rather than at the first generation.
    ///
    /// Returns the stored tensors no component reads, per file (`TensorSource.origin`), under the
    /// file's own key names: e.g. SD2's last OpenCLIP block, which diffusers' config skips.
    @discardableResult
    public func validate() throws -> [String: [String]] {
        var usages = [try Self.usage(of: unet.weights) { weights in
            let c = unet.configuration, graph = weights.graph
            // The smallest latent every level can halve; one context token.
            let side = 1 << (c.blockOutChannels.count - 1)
            var added: UNet2DConditionModel.AddedConditioning?
            if let projected = c.projectionClassEmbeddingsInputDimension, let timeWidth = c.additionTimeEmbedDimension {
                added = .init(textEmbeddings: graph.input("text_embeds", [1, projected - 6 * timeWidth]), timeIDs: graph.input("time_ids", [1, 6]))
            }
            _ = try unet.model(sample: graph.input("sample", [1, c.inChannels, side, side]), timesteps: graph.input("t", [1]),
                               text: graph.input("text", [1, 1, c.crossAttentionDimension[0]]), added: added, weights: weights)
        }]
        usages.append(try Self.usage(of: vae.weights) { weights in
            let c = vae.configuration, graph = weights.graph, side = c.downscaleFactor
            _ = try vae.model.encode(graph.input("image", [1, c.inChannels, side, side]), weights: weights)
            _ = try vae.model.decode(graph.input("latents", [1, c.latentChannels, 1, 1]), weights: weights)
        })
        for encoder in [textEncoder] + (textEncoder2.map { [$0] } ?? []) {
            usages.append(try Self.usage(of: encoder.weights) { weights in
                let graph = weights.graph
                _ = try encoder.model(ids: graph.input("ids", [1, encoder.configuration.maxPositionEmbeddings], dtype: .int32),
                                      pooledRows: graph.input("rows", [1], dtype: .int32), weights: weights)
            })
        }
        // Components of one single file share its origin: a tensor is unused only if none reads it.
        var stored: [String: Set<String>] = [:], used: [String: Set<String>] = [:]
        for usage in usages {
            stored[usage.origin, default: []].formUnion(usage.stored)
            used[usage.origin, default: []].formUnion(usage.used)
        }
        return stored.reduce(into: [:]) { result, entry in
            let unused = entry.value.subtracting(used[entry.key] ?? []).sorted()
            if !unused.isEmpty { result[entry.key] = unused }
        }
    }

    /// The stored keys behind `source` and the ones a graph built by `build` binds.
    private static func usage(
        of source: TensorSource, build: (WeightScope) throws -> Void
    ) throws -> (origin: String, stored: [String], used: [String]) {
        let binder = WeightBinder(graph: Graph(), source: source, dtype: .float32)
        try build(WeightScope(binder))
        let unbound = Set(binder.unusedNames())
        let bound = source.names.filter { !unbound.contains($0) }
        if let renamed = source as? RenamedTensorSource {
            return (renamed.origin, renamed.base.names, bound.compactMap { renamed.mapping[$0]?.stored })
        }
        return (source.origin, source.names, bound)
    }
}
