import Testing
@testable import KilnSampling

/// img2img starting mid-schedule: cut the timesteps, `setBeginIndex`, noise the init latents at
/// the first kept timestep, run the loop, and compare with diffusers' pipeline order of calls.
@Test(arguments: SchedulerKind.allCases)
func beginIndexMatchesDiffusersImageToImage(kind: SchedulerKind) throws {
    let cases = try schedulerFixture.get().beginIndexCases.filter { $0.className == kind.rawValue }
    #expect(!cases.isEmpty)
    var worstError: Float = 0
    for testCase in cases {
        let label = "\(kind.rawValue) from \(testCase.configName), begin index \(testCase.beginIndex)"
        let scheduler = try kind.makeScheduler(configuration: testCase.config)
        try scheduler.setTimesteps(testCase.steps, mu: testCase.mu)
        let kept = Array(scheduler.timesteps.dropFirst(testCase.beginIndex))
        // Karras timesteps may differ from diffusers' in the last float32 bit, as in the schedule test.
        #expect(relativeTolerance(kept, testCase.timesteps), "\(label): timesteps \(kept) vs \(testCase.timesteps)")
        scheduler.setBeginIndex(testCase.beginIndex)

        let count = testCase.shape.reduce(1, *)
        // The fixture's init latents, (i - count / 2) / 64, exact in float32.
        let initial = ShapedArray(shape: testCase.shape, scalars: (0..<count).map { (Float($0) - Float(count / 2)) / 64 })
        let generator = TorchGenerator(seed: testCase.seed)
        let noise = generator.normal(shape: testCase.shape)
        var latents = try scheduler.addNoise(to: initial, noise: noise, timestep: kept[0])
        let noisyError = relativeError(latents.scalars, testCase.noisy)
        #expect(noisyError <= 1e-6, "\(label): noised init off by \(noisyError)")

        for (index, timestep) in kept.enumerated() {
            let input = try scheduler.scaleModelInput(latents, timestep: timestep)
            latents = try scheduler.step(modelOutput: fakeModel(input, timestep: timestep), timestep: timestep, sample: latents, noise: generator)
            if index == 0 {
                let renoised = try scheduler.addNoise(to: initial, noise: noise, timestep: kept[1])
                let renoisedError = relativeError(renoised.scalars, testCase.renoised)
                #expect(renoisedError <= 1e-6, "\(label): re-noised init after the first step off by \(renoisedError)")
            }
        }
        let error = relativeError(latents.scalars, testCase.final)
        worstError = max(worstError, error)
        #expect(error <= 1e-5, "\(label): final sample off by \(error)")
    }
    print("\(kind.rawValue): worst img2img final-sample error \(worstError) over \(cases.count) configs")
}
