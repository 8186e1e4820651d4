import Foundation
import Testing
@testable import KilnSampling

struct SchedulerFixture: Decodable {
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
        /// Flow matching with dynamic shifting: the shift diffusers was given.
        let mu: Double?
        /// `learned_variance`: the fake model also outputs a variance half (DDPM learned variances).
        let model: String?
        /// Flow matching given the pipeline's unshifted sigmas linspace(1, 1/n, n), as Flux does.
        let customSigmas: Bool?
        enum CodingKeys: String, CodingKey {
            case schedules, mu, model
            case className = "class"
            case configName = "config_name"
            case config
            case customSigmas = "custom_sigmas"
        }
    }
    let cases: [Case]
    let beginIndexCases: [BeginIndexCase]
    enum CodingKeys: String, CodingKey {
        case cases
        case beginIndexCases = "begin_index_cases"
    }
}

/// img2img as diffusers' pipelines run it: the schedule cut at `beginIndex`, the init latents
/// noised at the first kept timestep (`noisy`), the loop (`final`), and the init latents
/// re-noised to the next timestep after the first step (`renoised`, inpainting's blend).
struct BeginIndexCase: Decodable {
    let className: String
    let configName: String
    let config: SchedulerConfiguration
    let mu: Double?
    let steps: Int
    let beginIndex: Int
    let timesteps: [Double]
    let seed: UInt64
    let shape: [Int]
    let noisy: [Float]
    let renoised: [Float]
    let final: [Float]
    enum CodingKeys: String, CodingKey {
        case config, mu, steps, timesteps, seed, shape, noisy, renoised, final
        case className = "class"
        case configName = "config_name"
        case beginIndex = "begin_index"
    }
}

/// The fixtures' stand-in for a denoiser: 0.1 · input + float32(sin(t / 100)); with
/// `learned_variance` a second channel half x² / (1 + x²) follows (as torch.cat on dim 1).
func fakeModel(_ input: ShapedArray, timestep: Double, model: String? = nil) -> ShapedArray {
    let offset = Float(sin(timestep / 100))
    let prediction = input.map { $0 * Float(0.1) + offset }
    guard model == "learned_variance" else { return prediction }
    let variance = input.map { value -> Float in
        let squared = value * value
        return squared / (1 + squared)
    }
    let batch = input.shape[0], perItem = input.scalars.count / batch
    var scalars = [Float]()
    for item in 0..<batch {
        scalars += prediction.scalars[(item * perItem)..<((item + 1) * perItem)]
        scalars += variance.scalars[(item * perItem)..<((item + 1) * perItem)]
    }
    var shape = input.shape
    shape[1] *= 2
    return ShapedArray(shape: shape, scalars: scalars)
}

/// `setTimesteps` as the fixture case called it in diffusers.
private func setTimesteps(_ scheduler: any Scheduler, steps: Int, of testCase: SchedulerFixture.Case) throws {
    if testCase.customSigmas ?? false, let flow = scheduler as? FlowMatchEulerDiscreteScheduler {
        let sigmas = NoiseSchedule.linspace(from: 1, to: 1 / Double(steps), count: steps)
        try flow.setTimesteps(sigmas: sigmas, mu: testCase.mu)
    } else {
        try scheduler.setTimesteps(steps, mu: testCase.mu)
    }
}

/// schedulers.json, decoded once; a decoding failure is reported by every test that reads it.
let schedulerFixture = Result { try loadFixture("schedulers", as: SchedulerFixture.self) }

/// Timesteps or sigmas agree to 1e-6 relative (1e-6 absolute below 1).
func relativeTolerance(_ actual: [Double], _ expected: [Double]) -> Bool {
    actual.count == expected.count && zip(actual, expected).allSatisfy { abs($0 - $1) <= 1e-6 * max(abs($1), 1) }
}

@Test(arguments: SchedulerKind.allCases)
func schedulerMatchesDiffusers(kind: SchedulerKind) throws {
    let cases = try schedulerFixture.get().cases.filter { $0.className == kind.rawValue }
    #expect(!cases.isEmpty)
    var worstLoopError: Float = 0
    for testCase in cases {
        for schedule in testCase.schedules {
            let label = "\(kind.rawValue) from \(testCase.configName), \(schedule.steps) steps"
            let scheduler = try kind.makeScheduler(configuration: testCase.config)
            try setTimesteps(scheduler, steps: schedule.steps, of: testCase)
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
            try setTimesteps(fresh, steps: schedule.steps, of: testCase)
            let original = ShapedArray(shape: [1, 3, 2, 2], scalars: NoiseSchedule.linspace(from: -2, to: 2, count: 12).map { Float($0) })
            let noisy = try fresh.addNoise(
                to: original, noise: ShapedArray(shape: [1, 3, 2, 2], scalars: schedule.addNoise.noise ?? []),
                timestep: fresh.timesteps[1])
            #expect(relativeError(noisy.scalars, schedule.addNoise.output) <= 1e-5, "\(label): add_noise")

            guard let loop = schedule.loop else { continue }
            let runner = try kind.makeScheduler(configuration: testCase.config)
            try setTimesteps(runner, steps: schedule.steps, of: testCase)
            let generator = TorchGenerator(seed: loop.seed)
            var latents = generator.normal(shape: loop.shape).map { $0 * runner.initNoiseSigma }
            for timestep in runner.timesteps {
                let input = try runner.scaleModelInput(latents, timestep: timestep)
                latents = try runner.step(modelOutput: fakeModel(input, timestep: timestep, model: testCase.model), timestep: timestep, sample: latents, noise: generator)
            }
            let error = relativeError(latents.scalars, loop.final)
            worstLoopError = max(worstLoopError, error)
            // A sample that starts at sigma_max (4096 under zero-terminal-SNR rescaling) loses
            // about sigma_max float32 ulps of the result to cancellation in the first step, in
            // diffusers as here, in whichever order each rounds.
            let tolerance = max(1e-5, runner.initNoiseSigma * Float.ulpOfOne)
            #expect(error <= tolerance, "\(label): final sample off by \(error)")
        }
    }
    print("\(kind.rawValue): worst final-sample error \(worstLoopError) over \(cases.count) configs")
}
