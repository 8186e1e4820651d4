import Foundation
import Kiln

/// `scheduler_config.json` (read as JSON5, as Python writes `Infinity`) and a generation's whole
/// sampling loop on a tiny latent with the scheduler it makes. The input's optional second part
/// is the request's choice, `SAMPLER [SPACING [STEPS]]` (`dpm++2m karras 8`); without it the
/// config's own `_class_name` runs 4 steps, as a request that names no sampler does.
enum SchedulerConfigTarget {
    /// More steps than this add time, not coverage. Karras sigmas search the whole training table
    /// per step: 30 steps over 10,000 training timesteps take 0.8 s in this debug, ASan build
    /// (milliseconds optimized), past the 1 s that marks a hang.
    static let maximumSteps = 20

    static func run(_ data: Data) {
        let parts = FuzzParts.split(data, maximum: 2)
        guard let configuration = try? SchedulerConfiguration.decode(from: parts[0]) else { return }
        var steps = 4
        let made: (any Scheduler)?
        if parts.count == 2 {
            guard let choice = FuzzParts.text(parts[1]) else { return }
            let words = choice.split(separator: " ").map(String.init)
            guard let name = words.first, let sampler = try? SamplerName(parsing: name) else { return }
            var spacing: SigmaSpacing?
            if words.count > 1 {
                guard let parsed = try? SigmaSpacing(parsing: words[1]) else { return }
                spacing = parsed
            }
            if words.count > 2, let count = Int(words[2]), (0...maximumSteps).contains(count) { steps = count }
            made = try? sampler.makeScheduler(configuration: configuration, spacing: spacing)
        } else {
            made = try? SchedulerKind.makeScheduler(configuration: configuration)
        }
        guard let scheduler = made, (try? scheduler.setTimesteps(steps)) != nil else { return }
        let noise: (any NoiseGenerator)? = scheduler.isStochastic ? TorchGenerator(seed: UInt64(0)) : nil
        var sample = ShapedArray(repeating: scheduler.initNoiseSigma, shape: [1, 1, 2, 2])
        if let first = scheduler.timesteps.first { _ = try? scheduler.addNoise(to: sample, noise: sample, timestep: first) }
        for timestep in scheduler.timesteps {
            guard let input = try? scheduler.scaleModelInput(sample, timestep: timestep),
                  let next = try? scheduler.step(modelOutput: input, timestep: timestep, sample: sample, noise: noise) else { return }
            sample = next
        }
    }
}
