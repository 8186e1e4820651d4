import KilnGraph
import KilnModels
import KilnSampling

/// T5's last hidden state as SD3's and FLUX's `encode_prompt` compute it: each prompt's ids
/// padded or truncated to `max_sequence_length` (ending in `</s>`), no attention mask. Weights
/// stay resident; graphs are cached by batch and length.
///
/// Shapes: `encode([p_1 ... p_N], maxSequenceLength: S)` -> `[N, S, d_model]` (4096 for T5-XXL).
final class T5PromptEncoder {
    let tokenizer: T5Tokenizer
    let component: ModelComponent<T5Configuration>
    /// The weights graphs bind (LoRA changes merged) and their device copies.
    let weights: AdaptedWeights
    var residency: ResidentWeights { weights.residency }
    let backend: Backend
    let dtype: DType
    private let model: T5EncoderModel
    private lazy var graphs = PreparedGraphCache<String, any PreparedGraph>(capacity: 4, byteBudget: backend.activationBudgetBytes)

    init(tokenizer: T5Tokenizer, component: ModelComponent<T5Configuration>, label: String, backend: Backend, dtype: DType) {
        self.tokenizer = tokenizer
        self.component = component
        weights = AdaptedWeights(label: label, base: component.weights)
        self.backend = backend
        self.dtype = dtype
        model = T5EncoderModel(configuration: component.configuration)
    }

    var stateWidth: Int { component.configuration.modelWidth }

    /// T5 ids `[N * S]` of `prompts`, flat.
    func tokenIDs(_ prompts: [String], maxSequenceLength: Int) throws -> [Int32] {
        try prompts.flatMap { try tokenizer.encode($0, maxLength: maxSequenceLength).ids }
    }

    func encode(_ prompts: [String], maxSequenceLength length: Int) throws -> ShapedArray {
        let ids = try tokenIDs(prompts, maxSequenceLength: length)
        let graph = try graphs.graph(for: "\(prompts.count)-\(length)") {
            let graph = Graph()
            let binder = WeightBinder(graph: graph, source: weights.current, dtype: dtype, residency: residency)
            let states = try model(
                ids: graph.input("ids", [prompts.count, length], dtype: .int32),
                relativePositionBuckets: graph.input("buckets", [length, length], dtype: .int32), weights: WeightScope(binder))
            return try backend.prepare(graph, outputs: [states], constants: binder.constants())
        }
        return ShapedArray(try graph.run([
            "ids": HostTensor(shape: [prompts.count, length], integers: ids),
            "buckets": model.relativePositionBuckets(length: length),
        ])[0])
    }

    /// T5 as a component LoRAs may change.
    func loraSlot(kohyaPrefixes: [String]) -> LoRAAdapters.Slot {
        LoRAAdapters.Slot(names: .textEncoder(label: weights.label, weights: component.weights, kohyaPrefixes: kohyaPrefixes), weights: weights)
    }

    /// Drops the prepared graphs and the device copy of the weights (T5-XXL alone is 9.5 GB in
    /// f16), so a transformer can take their place; the next encode uploads again.
    func release() {
        graphs.removeAll()
        residency.release()
    }
}
