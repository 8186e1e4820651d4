import Foundation
import Testing
@testable import KilnSampling

private struct SchedulerFixture: Decodable {
    struct Pair: Decodable {
        let timestep: Double
        let input: [Float]?
        let noise: [Float]?
        let output: [Float]
    }
    struct Loop: Decodable {
        let seed: UInt64
        let shape: [Int]
        let final: [Float]
    }
    struct Schedule: Decodable {
        let steps: Int
        let timesteps: [Double]
        let sigmas: [Float]?
        let initNoiseSigma: Float
        let scaleModelInput: Pair?
        let addNoise: Pair
        let loop: Loop?
        enum CodingKeys: String, CodingKey {
            case steps, timesteps, sigmas, loop
            case initNoiseSigma = "init_noise_sigma"
            case scaleModelInput = "scale_model_input"
            case addNoise = "add_noise"
        }
    }
    struct Case: Decodable {
        let className: String
        let configName: String
        let config: SchedulerConfiguration
        let schedules: [Schedule]
        enum CodingKeys: String, CodingKey {
            case schedules
            case className = "class"
            case configName = "config_name"
            case config
        }
    }
    let cases: [Case]
}

private func fakeModel(_ input: ShapedArray, timestep: Double) -> ShapedArray {
    let offset = Float(sin(timestep / 100))
    return input.map { $0 * Float(0.1) + offset }
}

private let fixtureCases: [SchedulerFixture.Case] = (try? loadFixture("schedulers", as: SchedulerFixture.self).cases) ?? []

private func relativeTolerance(_ actual: [Double], _ expected: [Double]) -> Bool {
    actual.count == expected.count && zip(actual, expected).allSatisfy { abs($0 - $1) <= 1e-6 * max(abs($1), 1) }
}

@Test(arguments: SchedulerKind.allCases)
func schedulerMatchesDiffusers(kind: SchedulerKind) throws {
    let cases = fixtureCases.filter { $0.className == kind.rawValue }
    #expect(!cases.isEmpty)
    var worstLoopError: Float = 0
    for testCase in cases {
        for schedule in testCase.schedules {
            let label = "\(kind.rawValue) from \(testCase.configName), \(schedule.steps) steps"
            let scheduler = try kind.makeScheduler(configuration: testCase.config)
            try scheduler.setTimesteps(schedule.steps)
            #expect(relativeTolerance(scheduler.timesteps, schedule.timesteps), "\(label): timesteps \(scheduler.timesteps) vs \(schedule.timesteps)")
            if let sigmas = schedule.sigmas {
                #expect(relativeTolerance(scheduler.sigmas.map(Double.init), sigmas.map(Double.init)), "\(label): sigmas \(scheduler.sigmas) vs \(sigmas)")
            }
            #expect(abs(scheduler.initNoiseSigma - schedule.initNoiseSigma) <= 1e-6 * max(1, schedule.initNoiseSigma), "\(label): init sigma")
            if let pair = schedule.scaleModelInput, let input = pair.input {
                let scaled = try scheduler.scaleModelInput(ShapedArray(shape: [1, 3, 2, 2], scalars: input), timestep: scheduler.timesteps[scheduler.timesteps.count / 2])  // same entry diffusers used; float bits may differ by an ulp
                #expect(relativeError(scaled.scalars, pair.output) <= 1e-6, "\(label): scale_model_input")
            }
            let fresh = try kind.makeScheduler(configuration: testCase.config)
            try fresh.setTimesteps(schedule.steps)
            let original = ShapedArray(shape: [1, 3, 2, 2], scalars: NoiseSchedule.linspace(from: -2, to: 2, count: 12).map { Float($0) })
            let noisy = try fresh.addNoise(
                to: original, noise: ShapedArray(shape: [1, 3, 2, 2], scalars: schedule.addNoise.noise ?? []),
                timestep: fresh.timesteps[1])
            #expect(relativeError(noisy.scalars, schedule.addNoise.output) <= 1e-5, "\(label): add_noise")

            guard let loop = schedule.loop else { continue }
            let runner = try kind.makeScheduler(configuration: testCase.config)
            try runner.setTimesteps(schedule.steps)
            let generator = TorchGenerator(seed: loop.seed)
            var latents = generator.normal(shape: loop.shape).map { $0 * runner.initNoiseSigma }
            for timestep in runner.timesteps {
                let input = try runner.scaleModelInput(latents, timestep: timestep)
                latents = try runner.step(modelOutput: fakeModel(input, timestep: timestep), timestep: timestep, sample: latents, noise: generator)
            }
            let error = relativeError(latents.scalars, loop.final)
            worstLoopError = max(worstLoopError, error)
            #expect(error <= 1e-5, "\(label): final sample off by \(error)")
        }
    }
    print("\(kind.rawValue): worst final-sample error \(worstLoopError) over \(cases.count) configs")
}
