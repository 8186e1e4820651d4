import Foundation
import Kiln

/// `scheduler_config.json` (read as JSON5, as Python writes `Infinity`), then the scheduler it
/// names and every sampler a request may choose built from it, each with a short schedule and one
/// step on a tiny latent: what a generation does with the file before the first model call.
enum SchedulerConfigTarget {
    static let stepCounts = [1, 4]

    static func run(_ data: Data) {
        guard let configuration = try? SchedulerConfiguration.decode(from: data) else { return }
        var schedulers: [any Scheduler] = []
        if let named = try? SchedulerKind.makeScheduler(configuration: configuration) { schedulers.append(named) }
        for sampler in SamplerName.allCases {
            for spacing in [nil] + SigmaSpacing.allCases {
                if let scheduler = try? sampler.makeScheduler(configuration: configuration, spacing: spacing) { schedulers.append(scheduler) }
            }
        }
        for scheduler in schedulers {
            for steps in stepCounts {
                guard (try? scheduler.setTimesteps(steps)) != nil, let timestep = scheduler.timesteps.first else { continue }
                let sample = ShapedArray(repeating: 0.5, shape: [1, 1, 2, 2])
                _ = try? scheduler.scaleModelInput(sample, timestep: timestep)
                _ = try? scheduler.addNoise(to: sample, noise: sample, timestep: timestep)
                let noise: (any NoiseGenerator)? = scheduler.isStochastic ? TorchGenerator(seed: UInt64(0)) : nil
                _ = try? scheduler.step(modelOutput: sample, timestep: timestep, sample: sample, noise: noise)
            }
        }
    }
}
