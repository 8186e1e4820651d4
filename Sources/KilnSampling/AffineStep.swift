import Foundation

/// One sampling step written as `next = sample * sampleScale + modelOutput * outputScale (+ noise *
/// noise.scale)`: the form a device applies in the same pass that combines classifier-free
/// guidance (`Graph.guidedStep`), so the model output never goes back to the host.
///
/// The coefficients fold the scheduler's formula into two products (computed in f64, rounded to
/// f32), so the result equals `step`'s up to f32 rounding — a few ulps — not bit for bit.
public struct AffineStep: Sendable {
    public var sampleScale: Float
    public var outputScale: Float
    /// The fresh noise `step` would add (drawn from the same generator, in the same order), `[count]`,
    /// and its scale; nil for deterministic steps.
    public var noise: (values: [Float], scale: Float)?

    /// The host form of the step, for checking: `sample * a + modelOutput * b (+ noise * n)` in f32.
    public func apply(sample: ShapedArray, modelOutput: ShapedArray) -> ShapedArray {
        var next = sample.zip(modelOutput) { $0 * sampleScale + $1 * outputScale }
        if let noise {
            for index in next.scalars.indices { next.scalars[index] = next.scalars[index] + noise.values[index] * noise.scale }
        }
        return next
    }
}

/// A scheduler whose steps, for some configurations, are affine in the sample and the model output.
public protocol AffineStepScheduler: Scheduler {
    /// Whether every step of this configuration is affine (no clipping, thresholding or history);
    /// when false, only `step` may be used.
    var stepsAreAffine: Bool { get }
    /// The step at `timestep` for a sample of `count` elements as coefficients, advancing the
    /// scheduler (and drawing from `noise`) exactly as `step` would. Call it instead of `step`.
    func affineStep(timestep: Double, count: Int, noise: NoiseGenerator?) throws -> AffineStep
}

extension SigmaPrediction {
    /// `sample + (sample - denoised) / sigma * stepSize` (the Euler update) as (sample scale,
    /// output scale), with `denoised` the clean estimate of `predictionType`.
    static func eulerCoefficients(sigma: Float, stepSize: Float, predictionType: String, scheduler: String) throws -> (Float, Float) {
        let (s, h) = (Double(sigma), Double(stepSize))
        switch predictionType {
        case "epsilon":
            // denoised = x - σ ε  =>  x + ε h
            return (1, stepSize)
        case "v_prediction":
            // denoised = v · (-σ / sqrt(σ² + 1)) + x / (σ² + 1)
            let variance = s * s + 1
            return (Float(1 + h * s / variance), Float(h / variance.squareRoot()))
        case "sample", "original_sample":
            // denoised = model output
            return (Float(1 + h / s), Float(-h / s))
        default:
            throw SchedulerError.unsupported("[\(scheduler)] prediction_type \(predictionType)")
        }
    }
}

extension EulerDiscreteScheduler: AffineStepScheduler {
    public var stepsAreAffine: Bool { true }

    public func affineStep(timestep: Double, count: Int, noise: NoiseGenerator?) throws -> AffineStep {
        let index = try resolveStep(timestep)
        let (sampleScale, outputScale) = try SigmaPrediction.eulerCoefficients(
            sigma: sigmas[index], stepSize: sigmas[index + 1] - sigmas[index],
            predictionType: configuration.predictionType ?? "epsilon", scheduler: "EulerDiscreteScheduler")
        return AffineStep(sampleScale: sampleScale, outputScale: outputScale, noise: nil)
    }
}

extension EulerAncestralDiscreteScheduler: AffineStepScheduler {
    public var stepsAreAffine: Bool { (configuration.predictionType ?? "epsilon") != "sample" }

    public func affineStep(timestep: Double, count: Int, noise: NoiseGenerator?) throws -> AffineStep {
        let name = "EulerAncestralDiscreteScheduler"
        guard let noise else { throw SchedulerError.noiseGeneratorRequired(name) }
        let index = try resolveStep(timestep)
        let (up, down) = Self.ancestralSigmas(from: sigmas[index], to: sigmas[index + 1])
        let (sampleScale, outputScale) = try SigmaPrediction.eulerCoefficients(
            sigma: sigmas[index], stepSize: down - sigmas[index], predictionType: configuration.predictionType ?? "epsilon", scheduler: name)
        return AffineStep(sampleScale: sampleScale, outputScale: outputScale, noise: (noise.normal(count: count), up))
    }
}

extension DDIMScheduler: AffineStepScheduler {
    public var stepsAreAffine: Bool { NoiseSchedule.clipRange(configuration, clipsByDefault: true) == nil }

    public func affineStep(timestep: Double, count: Int, noise: NoiseGenerator?) throws -> AffineStep {
        let name = "DDIMScheduler"
        guard stepsAreAffine else { throw SchedulerError.unsupported("[\(name)] affine steps with clip_sample") }
        let (alpha, alphaPrevious) = try alphaProducts(timestep)
        // next = sqrt(ᾱ_prev) x̂₀ + sqrt(1 - ᾱ_prev) ε̂, both affine in x and the model output m.
        let (a, b) = (Double(alpha).squareRoot(), Double(1 - alpha).squareRoot())
        let (p, d) = (Double(alphaPrevious).squareRoot(), Double(1 - alphaPrevious).squareRoot())
        let coefficients: (Double, Double)
        switch configuration.predictionType ?? "epsilon" {
        case "epsilon": coefficients = (p / a, d - p * b / a)                  // x̂₀ = (x - b m) / a, ε̂ = m
        case "sample": coefficients = (d / b, p - d * a / b)                   // x̂₀ = m, ε̂ = (x - a m) / b
        case "v_prediction": coefficients = (p * a + d * b, d * a - p * b)     // x̂₀ = a x - b m, ε̂ = a m + b x
        case let other: throw SchedulerError.unsupported("\(name) prediction_type \(other)")
        }
        return AffineStep(sampleScale: Float(coefficients.0), outputScale: Float(coefficients.1), noise: nil)
    }
}

extension FlowMatchEulerDiscreteScheduler: AffineStepScheduler {
    public var stepsAreAffine: Bool { true }

    public func affineStep(timestep: Double, count: Int, noise: NoiseGenerator?) throws -> AffineStep {
        let name = "FlowMatchEulerDiscreteScheduler"
        if isStochastic && noise == nil { throw SchedulerError.noiseGeneratorRequired(name) }
        let index = try resolveStep(timestep)
        let (sigma, next) = (sigmas[index], sigmas[index + 1])
        guard isStochastic, let noise else {
            return AffineStep(sampleScale: 1, outputScale: next - sigma, noise: nil)                       // x + (σ' - σ) v
        }
        // (1 - σ') (x - σ v) + σ' ε: the clean estimate re-noised to the next level.
        let keep = Double(1 - next)
        return AffineStep(sampleScale: Float(keep), outputScale: Float(-keep * Double(sigma)), noise: (noise.normal(count: count), next))
    }
}
