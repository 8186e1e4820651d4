import Testing
@testable import KilnSampling

/// Stable Diffusion 1.5's scheduler_config.json (a PNDM configuration), as the CLI swaps it.
private let stableDiffusion1: SchedulerConfiguration = {
    var configuration = SchedulerConfiguration()
    configuration.className = "PNDMScheduler"
    configuration.betaStart = 0.00085
    configuration.betaEnd = 0.012
    configuration.betaSchedule = "scaled_linear"
    configuration.numTrainTimesteps = 1000
    configuration.setAlphaToOne = false
    configuration.skipPrkSteps = true
    configuration.stepsOffset = 1
    configuration.clipSample = false
    return configuration
}()

/// The fixture case diffusers recorded for `className` built from `configName`.
private func fixtureCase(_ className: String, _ configName: String) throws -> SchedulerFixture.Case {
    let found = try schedulerFixture.get().cases.first { $0.className == className && $0.configName == configName }
    return try #require(found, "no fixture case \(className) from \(configName)")
}

@Test func samplerNamesParseToTheirDiffusersClasses() throws {
    let expected: [String: SchedulerKind] = [
        "ddpm": .ddpm, "ddim": .ddim, "pndm": .pndm, "euler": .eulerDiscrete, "euler_a": .eulerAncestralDiscrete,
        "heun": .heunDiscrete, "dpm++2m": .dpmSolverMultistep, "lcm": .lcm, "flow_euler": .flowMatchEulerDiscrete,
    ]
    #expect(Set(SamplerName.allCases.map(\.rawValue)) == Set(expected.keys))
    for (name, kind) in expected {
        let sampler = try SamplerName(parsing: name)
        #expect(sampler.kind == kind)
        let scheduler = try sampler.makeScheduler(configuration: stableDiffusion1)
        #expect(scheduler.configuration.className == kind.rawValue, "\(name) builds \(scheduler.configuration.className ?? "?")")
    }
    #expect(try SamplerName(parsing: "DPM++2M") == .dpmPlusPlus2M)
}

@Test func unknownSamplerNameListsTheValidOnes() throws {
    let error = #expect(throws: SchedulerError.self) { try SamplerName(parsing: "dpm2") }
    #expect(error == .unknownName(kind: "sampler", name: "dpm2", validNames: SamplerName.allCases.map(\.rawValue)))
    let message = error?.description ?? ""
    for name in SamplerName.allCases.map(\.rawValue) { #expect(message.contains(name), "\(message) lacks \(name)") }
    #expect(throws: SchedulerError.unknownName(kind: "sigma spacing", name: "polyexponential", validNames: ["default", "karras", "exponential"])) {
        try SigmaSpacing(parsing: "polyexponential")
    }
}

@Test func onlyDPMPlusPlus2MForcesSettings() throws {
    var model = stableDiffusion1
    model.algorithmType = "sde-dpmsolver++"
    model.solverOrder = 3
    model.useKarrasSigmas = true
    for sampler in SamplerName.allCases {
        let configuration = sampler.configuration(from: model)
        var expected = model
        expected.className = sampler.kind.rawValue
        if sampler == .dpmPlusPlus2M {
            expected.algorithmType = "dpmsolver++"
            expected.solverOrder = 2
        }
        #expect(configuration == expected, "\(sampler.rawValue)")
    }
    // The forced settings are what make an otherwise unsupported configuration usable.
    #expect(throws: SchedulerError.self) { try SchedulerKind.dpmSolverMultistep.makeScheduler(configuration: model) }
    _ = try SamplerName.dpmPlusPlus2M.makeScheduler(configuration: model)
}

@Test func swappedSamplerMatchesDiffusersFromConfig() throws {
    // diffusers: EulerDiscreteScheduler.from_config(PNDM's SD1 config), linspace spacing by default.
    let recorded = try fixtureCase("EulerDiscreteScheduler", "sd1")
    let scheduler = try SamplerName.euler.makeScheduler(configuration: stableDiffusion1)
    for schedule in recorded.schedules {
        try scheduler.setTimesteps(schedule.steps)
        #expect(relativeTolerance(scheduler.timesteps, schedule.timesteps))
    }
}

@Test func sigmaSpacingOverridesTheConfiguration() throws {
    var model = stableDiffusion1
    model.useKarrasSigmas = true
    let karras = try SigmaSpacing.karras.applied(to: stableDiffusion1, for: .eulerDiscrete)
    #expect(karras.useKarrasSigmas == true && karras.useExponentialSigmas == false)
    let exponential = try SigmaSpacing.exponential.applied(to: model, for: .heunDiscrete)
    #expect(exponential.useKarrasSigmas == false && exponential.useExponentialSigmas == true)
    let plain = try SigmaSpacing.default.applied(to: model, for: .ddim)
    #expect(plain.useKarrasSigmas == false && plain.useExponentialSigmas == false)
    for kind in SchedulerKind.allCases {
        _ = try SigmaSpacing.default.applied(to: model, for: kind)
        for spacing in [SigmaSpacing.karras, .exponential] {
            if kind.supportsSigmaSpacing {
                _ = try spacing.applied(to: model, for: kind)
            } else {
                #expect(throws: SchedulerError.self, "\(spacing) for \(kind)") { try spacing.applied(to: model, for: kind) }
            }
        }
    }
    #expect(Set(SchedulerKind.allCases.filter(\.supportsSigmaSpacing)) == [.eulerDiscrete, .heunDiscrete, .dpmSolverMultistep, .flowMatchEulerDiscrete])
}

@Test(arguments: [
    (SamplerName.euler, SigmaSpacing.exponential, "EulerDiscreteScheduler", "sdxl_exponential"),
    (.heun, .exponential, "HeunDiscreteScheduler", "sdxl_exponential"),
    (.dpmPlusPlus2M, .exponential, "DPMSolverMultistepScheduler", "sdxl_exponential"),
    (.heun, .karras, "HeunDiscreteScheduler", "sdxl_karras"),
    (.dpmPlusPlus2M, .karras, "DPMSolverMultistepScheduler", "sdxl_karras"),
    (.euler, .default, "EulerDiscreteScheduler", "sdxl"),
])
func sigmaSpacingGivesDiffusersSchedule(sampler: SamplerName, spacing: SigmaSpacing, className: String, configName: String) throws {
    // Start from the plain SDXL configuration with the opposite spacing set, so the override must win.
    var model = try fixtureCase(className, "sdxl").config
    model.useKarrasSigmas = spacing != .karras
    let recorded = try fixtureCase(className, configName)
    let scheduler = try sampler.makeScheduler(configuration: model, spacing: spacing)
    for schedule in recorded.schedules {
        try scheduler.setTimesteps(schedule.steps)
        #expect(relativeTolerance(scheduler.timesteps, schedule.timesteps), "\(sampler.rawValue) \(spacing) \(schedule.steps) steps")
        #expect(relativeTolerance(scheduler.sigmas.map(Double.init), (schedule.sigmas ?? []).map(Double.init)))
    }
}

@Test func noSpacingKeepsTheModelsOwn() throws {
    let recorded = try fixtureCase("EulerDiscreteScheduler", "sdxl_karras")
    let scheduler = try SamplerName.euler.makeScheduler(configuration: recorded.config, spacing: nil)
    let viaClassName = try SchedulerKind.makeScheduler(configuration: recorded.config, spacing: nil)
    for schedule in recorded.schedules {
        try scheduler.setTimesteps(schedule.steps)
        try viaClassName.setTimesteps(schedule.steps)
        #expect(relativeTolerance(scheduler.timesteps, schedule.timesteps))
        #expect(scheduler.timesteps == viaClassName.timesteps)
    }
}
