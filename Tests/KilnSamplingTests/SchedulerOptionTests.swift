import Foundation
import Testing
@testable import KilnSampling

private func configuration(_ className: String, _ edit: (inout SchedulerConfiguration) -> Void = { _ in }) -> SchedulerConfiguration {
    var configuration = SchedulerConfiguration()
    configuration.className = className
    edit(&configuration)
    return configuration
}

private let flux = configuration("FlowMatchEulerDiscreteScheduler") {
    $0.shift = 3
    $0.useDynamicShifting = true
    $0.baseShift = 0.5
    $0.maxShift = 1.15
    $0.baseImageSeqLen = 256
    $0.maxImageSeqLen = 4096
}

@Test func onlyDynamicFlowMatchingTakesMu() throws {
    for kind in SchedulerKind.allCases where kind != .flowMatchEulerDiscrete {
        let scheduler = try kind.makeScheduler(configuration: configuration(kind.rawValue))
        #expect(throws: SchedulerError.shiftParameterNotAccepted(kind.rawValue, 0.8), "\(kind)") {
            try scheduler.setTimesteps(10, mu: 0.8)
        }
    }
    let dynamic = try SchedulerKind.flowMatchEulerDiscrete.makeScheduler(configuration: flux)
    #expect(throws: SchedulerError.shiftParameterRequired("FlowMatchEulerDiscreteScheduler")) { try dynamic.setTimesteps(10) }
    try dynamic.setTimesteps(10, mu: 0.8)
    #expect(dynamic.timesteps.count == 10)

    // Without dynamic shifting diffusers ignores mu (Flux pipelines always pass one).
    let fixed = try SchedulerKind.flowMatchEulerDiscrete.makeScheduler(configuration: configuration("FlowMatchEulerDiscreteScheduler") { $0.shift = 3 })
    try fixed.setTimesteps(10)
    let plain = fixed.timesteps
    try fixed.setTimesteps(10, mu: 2)
    #expect(fixed.timesteps == plain)
}

@Test func dynamicShiftIsLinearInSequenceLength() {
    #expect(abs(flux.dynamicShift(imageSequenceLength: 256) - 0.5) < 1e-12)
    #expect(abs(flux.dynamicShift(imageSequenceLength: 4096) - 1.15) < 1e-12)
    // 1024x1024 Flux: (128 / 2)² = 4096 patches; 512x512: 1024 patches.
    #expect(abs(flux.dynamicShift(imageSequenceLength: 1024) - (0.5 + 0.65 * 768 / 3840)) < 1e-12)
}

@Test func stochasticSchedulersSayTheyDrawNoiseAndNeedAGenerator() throws {
    let stochastic: Set<SchedulerKind> = [.eulerAncestralDiscrete, .ddpm, .lcm]
    for kind in SchedulerKind.allCases {
        let scheduler = try kind.makeScheduler(configuration: configuration(kind.rawValue))
        #expect(scheduler.isStochastic == stochastic.contains(kind), "\(kind)")
        try scheduler.setTimesteps(4)
        let sample = ShapedArray(repeating: 0.5, shape: [1, 4, 2, 2])
        let timestep = scheduler.timesteps[0]
        let output = try scheduler.step(modelOutput: sample, timestep: timestep, sample: sample, noise: scheduler.isStochastic ? TorchGenerator(seed: UInt64(1)) : nil)
        #expect(output.shape == sample.shape)
        if scheduler.isStochastic {
            let again = try kind.makeScheduler(configuration: configuration(kind.rawValue))
            try again.setTimesteps(4)
            #expect(throws: SchedulerError.noiseGeneratorRequired(kind.rawValue)) {
                try again.step(modelOutput: sample, timestep: timestep, sample: sample, noise: nil)
            }
        }
    }
    let stochasticFlow = try SchedulerKind.flowMatchEulerDiscrete.makeScheduler(
        configuration: configuration("FlowMatchEulerDiscreteScheduler") { $0.stochasticSampling = true })
    #expect(stochasticFlow.isStochastic)
}

@Test func unimplementedOptionsThrowNamingTheKey() {
    let cases: [(SchedulerKind, SchedulerConfiguration, String)] = [
        (.eulerDiscrete, configuration("EulerDiscreteScheduler") { $0.useBetaSigmas = true }, "use_beta_sigmas"),
        (.heunDiscrete, configuration("HeunDiscreteScheduler") { $0.useBetaSigmas = true }, "use_beta_sigmas"),
        (.dpmSolverMultistep, configuration("DPMSolverMultistepScheduler") { $0.useBetaSigmas = true }, "use_beta_sigmas"),
        (.flowMatchEulerDiscrete, configuration("FlowMatchEulerDiscreteScheduler") { $0.useBetaSigmas = true }, "use_beta_sigmas"),
        (.dpmSolverMultistep, configuration("DPMSolverMultistepScheduler") { $0.useLuLambdas = true }, "use_lu_lambdas"),
        (.dpmSolverMultistep, configuration("DPMSolverMultistepScheduler") { $0.useFlowSigmas = true }, "use_flow_sigmas"),
        (.eulerDiscrete, configuration("EulerDiscreteScheduler") {
            $0.timestepType = "continuous"
            $0.predictionType = "v_prediction"
        }, "timestep_type"),
        (.ddpm, configuration("DDPMScheduler") { $0.thresholding = true }, "thresholding"),
        (.ddpm, configuration("DDPMScheduler") { $0.varianceType = "fixed_large_log" }, "variance_type"),
        (.lcm, configuration("LCMScheduler") { $0.thresholding = true }, "thresholding"),
        (.pndm, configuration("PNDMScheduler") { $0.predictionType = "sample" }, "prediction_type"),
        (.heunDiscrete, configuration("HeunDiscreteScheduler") { $0.betaSchedule = "exp" }, "beta_schedule"),
    ]
    for (kind, configuration, key) in cases {
        let error = #expect(throws: SchedulerError.self, "\(kind) \(key)") { try kind.makeScheduler(configuration: configuration) }
        #expect(error?.description.contains(key) ?? false, "\(error?.description ?? "no error") should name \(key)")
    }
    for kind in [SchedulerKind.eulerDiscrete, .heunDiscrete, .dpmSolverMultistep, .flowMatchEulerDiscrete] {
        let both = configuration(kind.rawValue) {
            $0.useKarrasSigmas = true
            $0.useExponentialSigmas = true
        }
        #expect(throws: SchedulerError.self, "\(kind) with two spacings") { try kind.makeScheduler(configuration: both) }
    }
}

@Test func scheduleLimitsThrowInsteadOfTrapping() throws {
    let lcm = try SchedulerKind.lcm.makeScheduler(configuration: configuration("LCMScheduler") { $0.originalInferenceSteps = 20 })
    #expect(throws: SchedulerError.self) { try lcm.setTimesteps(25) }
    let pndm = try SchedulerKind.pndm.makeScheduler(configuration: configuration("PNDMScheduler"))
    #expect(throws: SchedulerError.self, "Runge-Kutta warm-up needs 4 steps") { try pndm.setTimesteps(3) }
    for kind in SchedulerKind.allCases {
        let scheduler = try kind.makeScheduler(configuration: configuration(kind.rawValue))
        #expect(throws: SchedulerError.self, "\(kind) with 0 steps") { try scheduler.setTimesteps(0) }
        try scheduler.setTimesteps(4)
        let sample = ShapedArray(repeating: 0, shape: [1, 4, 2, 2])
        let wrong = ShapedArray(repeating: 0, shape: [1, 4, 2, 3])
        #expect(throws: SchedulerError.self, "\(kind) shape mismatch") {
            try scheduler.step(modelOutput: wrong, timestep: scheduler.timesteps[0], sample: sample, noise: TorchGenerator(seed: UInt64(0)))
        }
        #expect(throws: SchedulerError.self, "\(kind) add_noise at a timestep outside the schedule") {
            try scheduler.addNoise(to: sample, noise: sample, timestep: 5000)
        }
    }
}

@Test(arguments: [SchedulerKind.ddim, .ddpm, .pndm])
func beginIndexIsHarmlessForTimestepIndexedSchedulers(kind: SchedulerKind) throws {
    // diffusers' img2img skips set_begin_index for these classes; Kiln's is a no-op, so the cut
    // loop gives the same result with or without it.
    var finals: [ShapedArray] = []
    for callsSetBeginIndex in [false, true] {
        let scheduler = try kind.makeScheduler(configuration: configuration(kind.rawValue) { $0.skipPrkSteps = true })
        try scheduler.setTimesteps(8)
        if callsSetBeginIndex { scheduler.setBeginIndex(4) }
        let generator = TorchGenerator(seed: UInt64(3))
        var latents = generator.normal(shape: [1, 4, 3, 3])
        for timestep in scheduler.timesteps.dropFirst(4) {
            latents = try scheduler.step(modelOutput: fakeModel(latents, timestep: timestep), timestep: timestep, sample: latents, noise: generator)
        }
        finals.append(latents)
    }
    #expect(finals[0] == finals[1])
}

@Test func configurationsWrittenByPythonJSONDecode() throws {
    // diffusers saves DPM-Solver's default floor as the non-standard token -Infinity.
    let text = #"{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "sigma_min": null, "use_karras_sigmas": true}"#
    let decoded = try SchedulerConfiguration.decode(from: Data(text.utf8))
    #expect(decoded.lambdaMinClipped == -.infinity)
    #expect(decoded.useKarrasSigmas == true && decoded.sigmaMin == nil)
    _ = try SchedulerKind.makeScheduler(configuration: decoded)
    var clipped = decoded
    clipped.lambdaMinClipped = -5.1
    #expect(throws: SchedulerError.self) { try SchedulerKind.makeScheduler(configuration: clipped) }
}

/// kiln-shapes' scheduler: DPM-Solver++ 2M, trailing spacing, v-prediction on betas rescaled to
/// zero terminal SNR. diffusers pins ᾱ_T to 2^-24, so the first sigma is 4096, not infinity
/// (values from diffusers 0.39's DPMSolverMultistepScheduler.set_timesteps(12)).
@Test func configurationsThatAreNotUTF8AreRefusedNotTrapped() throws {
    // Found by Fuzz/ (scheduler-config): Foundation's JSON5 scanner stopped the process with a
    // fatal error on invalid UTF-8 where it scanned a key. The fuzzer's input, and a short one.
    let found = try #require(Bundle.module.url(forResource: "scheduler_config_invalid_utf8", withExtension: "json", subdirectory: "Fixtures/fuzz"))
    for bytes in [try Data(contentsOf: found), Data([0x7B, 0x20, 0xFF, 0xFE, 0x22, 0x61, 0x22, 0x3A, 0x31, 0x7D])] {
        let error = #expect(throws: SchedulerError.self) { try SchedulerConfiguration.decode(from: bytes) }
        #expect(error.map { "\($0)".contains("scheduler_config.json: not UTF-8 text (invalid byte at offset") } == true, "\(String(describing: error))")
    }
    #expect(SchedulerConfiguration.firstInvalidUTF8Offset(Data("{\"é\": 1}".utf8)) == nil)
    #expect(SchedulerConfiguration.firstInvalidUTF8Offset(Data([0x7B, 0x20, 0xC3, 0xA9, 0xFF])) == 4)
}

@Test func trainTimestepCountsAreBoundedForEveryScheduler() throws {
    // Fuzz/ (scheduler-config) showed a schedule's cost growing with num_train_timesteps without
    // bound: every scheduler builds tables that long, so 10^12 would ask for terabytes.
    for kind in SchedulerKind.allCases {
        for count in [1, SchedulerConfiguration.maximumTrainTimesteps + 1, 1 << 40] {
            let error = #expect(throws: SchedulerError.self, "\(kind) with \(count)") {
                try kind.makeScheduler(configuration: configuration(kind.rawValue) { $0.numTrainTimesteps = count })
            }
            #expect(error.map { "\($0)".contains("num_train_timesteps \(count) is outside 2...10000") } == true, "\(String(describing: error))")
        }
        _ = try kind.makeScheduler(configuration: configuration(kind.rawValue) { $0.numTrainTimesteps = 2_000 })
    }
}

@Test func steppingPastTheEndOfTheScheduleThrows() throws {
    // Found by Fuzz/ (scheduler-config): 4 trailing steps over 2 training timesteps repeat a
    // timestep, the search starts at its second match as diffusers' does, and the loop's last step
    // read past the sigma table.
    let text = #"{"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 2, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}"#
    let scheduler = try SchedulerKind.makeScheduler(configuration: SchedulerConfiguration.decode(from: Data(text.utf8)))
    try scheduler.setTimesteps(4)
    var sample = ShapedArray(repeating: 1, shape: [1, 1, 2, 2])
    var failure: (any Error)?
    for timestep in scheduler.timesteps {
        do {
            let input = try scheduler.scaleModelInput(sample, timestep: timestep)
            sample = try scheduler.step(modelOutput: input, timestep: timestep, sample: sample, noise: nil)
        } catch {
            failure = error
            break
        }
    }
    #expect(failure is SchedulerError, "\(String(describing: failure))")
}

@Test func dpmSolverKeepsTheZeroSNRTerminalSigmaFinite() throws {
    let zeroSNR = configuration("DPMSolverMultistepScheduler") {
        $0.numTrainTimesteps = 1000
        $0.betaStart = 0.00085
        $0.betaEnd = 0.012
        $0.betaSchedule = "scaled_linear"
        $0.predictionType = "v_prediction"
        $0.rescaleBetasZeroSnr = true
        $0.timestepSpacing = "trailing"
        $0.algorithmType = "dpmsolver++"
        $0.solverOrder = 2
        $0.stepsOffset = 1
    }
    let scheduler = try DPMSolverMultistepScheduler(configuration: zeroSNR)
    try scheduler.setTimesteps(12)
    #expect(scheduler.timesteps == [999, 916, 832, 749, 666, 582, 499, 416, 332, 249, 166, 82])
    let expected: [Float] = [4096.0, 22.648186, 9.464898, 5.3987408, 3.5009356, 2.429652, 1.768081, 1.3168464, 0.9834383,
                             0.72705609, 0.51335144, 0.31446606, 0]
    #expect(scheduler.sigmas.count == expected.count)
    for (sigma, reference) in zip(scheduler.sigmas, expected) {
        #expect(abs(sigma - reference) <= 1e-4 * max(1, reference), "\(sigma) against diffusers' \(reference)")
    }
}

/// A config no trained schedule has is refused when it is read; a step count that would push
/// `leading` timesteps past the trained range is refused by the schedulers that index their
/// tables with them, where diffusers fails with an index error.
@Test func absurdScheduleValuesAreRefused() throws {
    for (key, value, message) in [("steps_offset", "500000", "steps_offset 500000 must be in 0..<1000"),
                                  ("num_train_timesteps", "0", "num_train_timesteps 0 is outside 2...10000"), ("beta_end", "3", "beta_end 3.0"),
                                  ("solver_order", "9", "solver_order 9")] {
        let text = #"{"_class_name": "DDIMScheduler", "\#(key)": \#(value)}"#
        #expect(throws: SchedulerError.self) { try SchedulerConfiguration.decode(from: Data(text.utf8)) }
        do {
            _ = try SchedulerConfiguration.decode(from: Data(text.utf8))
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }
    let leading = configuration("PNDMScheduler") {
        $0.stepsOffset = 1
        $0.timestepSpacing = "leading"
    }
    for kind in [SchedulerKind.pndm, .ddim, .ddpm] {
        let scheduler = try kind.makeScheduler(configuration: leading)
        try scheduler.setTimesteps(999)
        #expect(throws: SchedulerError.self, "\(kind)") { try scheduler.setTimesteps(1000) }
    }
    // Sigma-space schedulers interpolate and clamp there, as diffusers' do.
    for kind in [SchedulerKind.eulerDiscrete, .eulerAncestralDiscrete] {
        try kind.makeScheduler(configuration: leading).setTimesteps(1000)
    }
}
