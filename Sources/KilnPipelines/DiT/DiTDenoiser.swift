import KilnGraph
import KilnModels
import KilnSampling

/// The DiT transformer prepared once for one model batch, then run every step with new inputs.
///
/// Shapes: sample `[M, C, S, S]`, one timestep shared by the batch, class labels `[M]` ->
/// prediction `[M, C_out, S, S]` (f32 on the host; `C_out = 2C` with learned sigma).
final class DiTDenoiser {
    let sampleShape: [Int]
    private let graph: any PreparedGraph

    init(checkpoint: DiTCheckpoint, sampleShape: [Int], backend: Backend, dtype: DType) throws {
        self.sampleShape = sampleShape
        let batch = sampleShape[0]
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: checkpoint.transformer.weights, dtype: dtype)
        let sample = graph.input("sample", Shape(sampleShape), dtype: dtype)
        // Fractional sigma-space timesteps (Euler, DPM++ Karras) must not round to f16.
        let timesteps = graph.input("timesteps", [batch], dtype: .float32)
        let labels = graph.input("class_labels", [batch], dtype: .int32)
        let output = try checkpoint.model(
            sample: sample, timesteps: timesteps, classLabels: labels, weights: WeightScope(binder))
        let constants = binder.constants().adding(output.hostConstants)
        self.graph = try backend.prepare(graph, outputs: [output.sample], constants: constants)
    }

    func predict(_ sample: ShapedArray, timestep: Double, classLabels: [Int]) throws -> ShapedArray {
        let batch = sample.shape[0]
        return ShapedArray(try graph.run([
            "sample": sample.hostTensor(),
            "timesteps": HostTensor(shape: [batch], scalars: .init(repeating: Float(timestep), count: batch)),
            "class_labels": HostTensor(shape: [batch], integers: classLabels.map { Int32($0) }),
        ])[0])
    }
}
