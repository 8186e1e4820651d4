// Builder for the sampling step that follows the denoiser on the device.

extension Graph {
    /// `sample * a + (u + g * (c - u)) * b (+ noise * n)` in one pass, f32 out: classifier-free
    /// guidance (Ho & Salimans, https://arxiv.org/abs/2207.12598) and an affine scheduler step.
    ///
    /// - `prediction [2N, ...]` (unconditional half, then conditional) or `[N, ...]` (no guidance),
    ///   in the model's storage type;
    /// - `sample [N, ...]`, `noise [N, ...]`: f32, as the scheduler keeps them;
    /// - `coefficients [4]` f32: (g, a, b, n), per-run values so one prepared graph serves every step.
    public func guidedStep(prediction: Tensor, sample: Tensor, coefficients: Tensor, noise: Tensor? = nil) throws -> Tensor {
        let op = "guided_step"
        try requireFloat(op, prediction)
        for (tensor, role) in [(sample, "sample"), (coefficients, "coefficients")] + (noise.map { [($0, "noise")] } ?? [])
        where tensor.dtype != .float32 {
            throw GraphError(op, "\(role) must be f32, got \(tensor.dtype.shortName) \(tensor.shape)")
        }
        try requireShape(op, coefficients, [4], "coefficients")
        let images = sample.shape[0]
        guard sample.shape.rank >= 1, prediction.shape.rank == sample.shape.rank,
              prediction.shape[0] == images || prediction.shape[0] == 2 * images,
              Array(prediction.shape.dimensions.dropFirst()) == Array(sample.shape.dimensions.dropFirst()) else {
            throw GraphError(op, "prediction \(prediction.shape) must be [N or 2N, ...] for sample \(sample.shape)")
        }
        var inputs = [prediction, sample, coefficients]
        if let noise {
            try requireShape(op, noise, sample.shape, "noise")
            inputs.append(noise)
        }
        return append(.guidedStep(hasNoise: noise != nil), inputs, shape: sample.shape, dtype: .float32)
    }
}
