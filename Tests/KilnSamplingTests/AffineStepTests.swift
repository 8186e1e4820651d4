import Testing
@testable import KilnSampling

/// `affineStep` is the coefficient form of `step` that the device applies after the U-Net: over a
/// whole schedule it must give `step`'s samples up to f32 rounding and leave the generator where
/// `step` leaves it.
@Suite struct AffineStepTests {
    static let cases: [(kind: SchedulerKind, prediction: String, edit: @Sendable (inout SchedulerConfiguration) -> Void)] = [
        (.eulerDiscrete, "epsilon", { _ in }),
        (.eulerDiscrete, "v_prediction", { _ in }),
        (.eulerDiscrete, "sample", { _ in }),
        (.eulerDiscrete, "epsilon", { $0.useKarrasSigmas = true }),
        (.eulerAncestralDiscrete, "epsilon", { _ in }),
        (.eulerAncestralDiscrete, "v_prediction", { _ in }),
        (.ddim, "epsilon", { $0.clipSample = false }),
        (.ddim, "v_prediction", { $0.clipSample = false; $0.timestepSpacing = "trailing" }),
        (.ddim, "sample", { $0.clipSample = false; $0.setAlphaToOne = false }),
        (.flowMatchEulerDiscrete, "flow", { $0.shift = 3 }),
        (.flowMatchEulerDiscrete, "flow", { $0.shift = 3; $0.stochasticSampling = true }),
    ]

    @Test(arguments: cases.indices)
    func coefficientsReproduceStep(_ index: Int) throws {
        let (kind, prediction, edit) = Self.cases[index]
        var configuration = SchedulerConfiguration()
        configuration.className = kind.rawValue
        configuration.predictionType = prediction
        edit(&configuration)
        let reference = try kind.makeScheduler(configuration: configuration)
        let fused = try #require(try kind.makeScheduler(configuration: configuration) as? any AffineStepScheduler)
        #expect(fused.stepsAreAffine)
        try reference.setTimesteps(12)
        try fused.setTimesteps(12)
        let (referenceNoise, fusedNoise) = (TorchGenerator(seed: UInt64(7)), TorchGenerator(seed: UInt64(7)))
        let outputs = TorchGenerator(seed: UInt64(3))
        let shape = [2, 4, 3, 5]
        var expected = outputs.normal(shape: shape)
        var actual = expected
        var worst: Float = 0
        for timestep in reference.timesteps {
            let modelOutput = outputs.normal(shape: shape)
            expected = try reference.step(modelOutput: modelOutput, timestep: timestep, sample: expected, noise: referenceNoise)
            let step = try fused.affineStep(timestep: timestep, count: actual.scalars.count, noise: fusedNoise)
            actual = step.apply(sample: actual, modelOutput: modelOutput)
            let largest = expected.scalars.map(abs).max() ?? 0
            let difference = zip(expected.scalars, actual.scalars).map { abs($0 - $1) }.max() ?? .infinity
            worst = max(worst, difference / max(largest, 1e-6))
        }
        #expect(worst < 2e-5, "\(kind) \(prediction): relative difference \(worst) after \(reference.timesteps.count) steps")
        #expect(referenceNoise.normal(count: 3) == fusedNoise.normal(count: 3), "the generators drifted apart")
    }

    @Test func clippingDDIMIsNotAffine() throws {
        var configuration = SchedulerConfiguration()
        configuration.className = SchedulerKind.ddim.rawValue
        let scheduler = try #require(try SchedulerKind.ddim.makeScheduler(configuration: configuration) as? any AffineStepScheduler)
        #expect(!scheduler.stepsAreAffine)
        try scheduler.setTimesteps(4)
        #expect(throws: SchedulerError.self) { try scheduler.affineStep(timestep: scheduler.timesteps[0], count: 4, noise: nil) }
    }
}
