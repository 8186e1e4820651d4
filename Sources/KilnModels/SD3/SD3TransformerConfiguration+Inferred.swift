import KilnGraph

extension SD3TransformerConfiguration {
    /// The configuration a transformer in diffusers' key names implies (for single files, which
    /// carry no config.json): widths from the weight shapes, layers from the block count, SD3.5's
    /// dual attention from which blocks have `attn2`, QK norm from `norm_q`. The head width is
    /// read from the QK-norm gains when there are any, else SD3's 64.
    public static func inferred(from source: TensorSource) throws -> SD3TransformerConfiguration {
        func shape(_ name: String, rank: Int) throws -> Shape {
            guard let shape = source.shape(of: name) else { throw WeightError.missing(origin: source.origin, name: name, expected: nil) }
            guard shape.rank == rank else {
                throw ConfigurationError(file: source.origin, message: "tensor '\(name)' has shape \(shape), expected rank \(rank)")
            }
            return shape
        }
        let patchProjection = try shape("pos_embed.proj.weight", rank: 4)                  // [D, C, p, p]
        let (width, inChannels, patch) = (patchProjection[0], patchProjection[1], patchProjection[2])
        let context = try shape("context_embedder.weight", rank: 2)                         // [D, joint]
        let pooled = try shape("time_text_embed.text_embedder.linear_1.weight", rank: 2)    // [D, pooled]
        let output = try shape("proj_out.weight", rank: 2)                                  // [p*p*out, D]
        let positions = try shape("pos_embed.pos_embed", rank: 3)                           // [1, M*M, D]
        let gridSize = Int(Double(positions[1]).squareRoot().rounded())
        guard gridSize * gridSize == positions[1] else {
            throw ConfigurationError(file: source.origin, message: "pos_embed holds \(positions[1]) positions, not a square grid")
        }
        let blockIndices = Set(source.names.compactMap { name -> Int? in
            let parts = name.split(separator: ".")
            return parts.count > 2 && parts[0] == "transformer_blocks" ? Int(parts[1]) : nil
        })
        let layerCount = (blockIndices.max() ?? -1) + 1
        let dual = blockIndices.filter { source.shape(of: "transformer_blocks.\($0).attn2.to_q.weight") != nil }.sorted()
        let queryNorm = source.shape(of: "transformer_blocks.0.attn.norm_q.weight")
        let headWidth = queryNorm?[0] ?? 64
        guard width % headWidth == 0 else {
            throw ConfigurationError(file: source.origin, message: "width \(width) is not a multiple of the head width \(headWidth)")
        }
        let configuration = SD3TransformerConfiguration(
            sampleSize: 128, patchSize: patch, inChannels: inChannels, layerCount: layerCount, attentionHeadDimension: headWidth,
            attentionHeads: width / headWidth, jointAttentionDimension: context[1], captionProjectionDimension: context[0],
            pooledProjectionDimension: pooled[1], outChannels: output[0] / (patch * patch), positionEmbeddingMaxSize: gridSize,
            dualAttentionLayers: dual, qkNorm: queryNorm == nil ? nil : "rms_norm")
        try configuration.validate(file: source.origin)
        return configuration
    }
}
