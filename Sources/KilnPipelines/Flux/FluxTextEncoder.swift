import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// FLUX's two text encoders as FluxPipeline's `encode_prompt` runs them: CLIP-L's pooled output
/// (77 ids, padded and truncated; `pooler_output`, no projection) and T5's last hidden state
/// (ids padded and truncated to `max_sequence_length`, no attention mask).
///
/// Shapes: CLIP ids `[B, 77]`, T5 ids `[B, Lt]` (int32) -> text states `[B, Lt, d_model]`
/// (4096 for T5-XXL) and pooled `[B, hidden]` (768 for CLIP-L), f32 on the host.
public final class FluxTextEncoder {
    public let clip: CLIPTextModel
    public let clipWeights: TensorSource
    public let t5: T5EncoderModel
    public let t5Weights: TensorSource
    public let backend: Backend
    public let dtype: DType
    private var prepared: [String: any PreparedGraph] = [:]

    public init(clip: CLIPTextModel, clipWeights: TensorSource, t5: T5EncoderModel, t5Weights: TensorSource,
                backend: Backend, dtype: DType) {
        self.clip = clip
        self.clipWeights = clipWeights
        self.t5 = t5
        self.t5Weights = t5Weights
        self.backend = backend
        self.dtype = dtype
    }

    /// Loads `text_encoder` (CLIPTextModel) and `text_encoder_2` (T5EncoderModel) of a FluxPipeline
    /// folder; encoders a single file carries replace the folder's weights (configs stay the folder's).
    public convenience init(folder: URL, singleFile: FluxSingleFile? = nil, backend: Backend, dtype: DType) throws {
        let clipFolder = folder.appendingPathComponent("text_encoder"), t5Folder = folder.appendingPathComponent("text_encoder_2")
        let clipWeights = try singleFile?.clip ?? SafeTensorsSource.component(folder: clipFolder, baseName: "model")
        let t5Weights = try singleFile?.t5 ?? SafeTensorsSource.component(folder: t5Folder, baseName: "model")
        let clip = CLIPTextModel(configuration: try CLIPTextConfiguration.load(clipFolder.appendingPathComponent("config.json")),
                                 prefix: CLIPTextModel.detectPrefix(in: clipWeights))
        let t5 = T5EncoderModel(configuration: try T5Configuration.load(t5Folder.appendingPathComponent("config.json")))
        self.init(clip: clip, clipWeights: clipWeights, t5: t5, t5Weights: t5Weights, backend: backend, dtype: dtype)
    }

    /// Width of the pooled embedding and of one text state.
    public var pooledWidth: Int { clip.configuration.hiddenSize }
    public var stateWidth: Int { t5.configuration.modelWidth }

    /// CLIP's pooled output `[B, hidden]` for `ids` `[B, L]` given flat.
    public func pooled(clipIDs ids: [Int32], batch: Int) throws -> ShapedArray {
        guard batch > 0, ids.count % batch == 0 else { throw FluxPipelineError.invalidRequest("\(ids.count) CLIP ids do not split into \(batch) prompts") }
        let length = ids.count / batch
        let rows = CLIPTextModel.pooledRows(ids: ids, sequenceLength: length)
        let graph = try preparedGraph("clip-\(batch)-\(length)") { graph, binder in
            let outputs = try clip(ids: graph.input("ids", [batch, length], dtype: .int32), pooledRows: graph.input("rows", [batch], dtype: .int32),
                                   weights: WeightScope(binder))
            return outputs.pooled
        } source: { clipWeights }
        return ShapedArray(try graph.run(["ids": HostTensor(shape: [batch, length], integers: ids),
                                          "rows": HostTensor(shape: [batch], integers: rows)])[0])
    }

    /// T5's last hidden state `[B, L, d_model]` for `ids` `[B, L]` given flat.
    public func states(t5IDs ids: [Int32], batch: Int) throws -> ShapedArray {
        guard batch > 0, ids.count % batch == 0 else { throw FluxPipelineError.invalidRequest("\(ids.count) T5 ids do not split into \(batch) prompts") }
        let length = ids.count / batch
        let graph = try preparedGraph("t5-\(batch)-\(length)") { graph, binder in
            try t5(ids: graph.input("ids", [batch, length], dtype: .int32),
                   relativePositionBuckets: graph.input("buckets", [length, length], dtype: .int32), weights: WeightScope(binder))
        } source: { t5Weights }
        return ShapedArray(try graph.run(["ids": HostTensor(shape: [batch, length], integers: ids),
                                          "buckets": t5.relativePositionBuckets(length: length)])[0])
    }

    /// Drops the prepared graphs and with them the encoders' weights on the device (T5-XXL alone
    /// is 9.5 GB in f16), so the transformer can take their place; the next encode uploads again.
    public func release() { prepared.removeAll() }

    private func preparedGraph(_ key: String, build: (Graph, WeightBinder) throws -> Tensor,
                               source: () -> TensorSource) throws -> any PreparedGraph {
        if let graph = prepared[key] { return graph }
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: source(), dtype: dtype)
        let output = try build(graph, binder)
        let ready = try backend.prepare(graph, outputs: [output], constants: binder.constants())
        prepared[key] = ready
        return ready
    }
}
