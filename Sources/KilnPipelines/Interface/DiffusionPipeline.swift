import Foundation
import KilnGraph

/// A loaded latent-diffusion model that makes images from requests: the one interface of every
/// family (Stable Diffusion 1.x/2.x/XL, SD3/3.5, FLUX.1, DiT), what `kiln generate`, the render
/// farm, the server and the C API stand on. Open one with `Pipelines.open`.
///
/// ```swift
/// let pipeline = try Pipelines.open(URL(fileURLWithPath: "sd15"), backend: try VulkanBackend())
/// var request = pipeline.defaults.request(.prompt("a lighthouse at dusk", negative: nil), seed: 42)
/// request.steps = 25
/// try pipeline.check(request)                       // every setting, before any work
/// let result = try await pipeline.generate(request) { print($0.step, $0.stepCount) }
/// // result.images [N, 3, H, W] in [-1, 1]; result.latents [N, C, h, w]
/// ```
///
/// A pipeline keeps its weights resident on the device and its prepared graphs cached by shape,
/// so later requests (of any size) cost only their own work. One pipeline runs one generation at
/// a time: calls from several threads are serialised.
public protocol DiffusionPipeline: AnyObject {
    var family: ModelFamily { get }
    /// The folder or file the model was opened from.
    var modelURL: URL { get }
    var backend: Backend { get }
    /// Storage type of weights and activations on the backend (the CPU backend computes in f32).
    var dtype: DType { get }
    /// The settings this model uses where a request leaves them to it.
    var defaults: GenerationDefaults { get }
    /// Bytes the model's weights take on the device.
    var weightBytes: Int { get }

    /// Checks `request` against this model (sizes, modes, sampler, options, limits) without
    /// running anything; throws the `PipelineError` that `generate` would throw before any work.
    func check(_ request: GenerationRequest) throws
    /// The sampler a request runs, by Kiln's name (`euler_a`; the model's own scheduler class
    /// when the request names none).
    func samplerName(for request: GenerationRequest) -> String
    /// Runs `request`, reporting each stage and step to `progress`; `isCancelled` is polled at
    /// every step boundary and stops the run with `PipelineError.cancelled`.
    func generate(
        _ request: GenerationRequest, progress: (GenerationProgress) -> Void, isCancelled: () -> Bool
    ) throws -> GenerationResult
}

extension DiffusionPipeline {
    /// The synchronous form without progress.
    public func generate(_ request: GenerationRequest, isCancelled: () -> Bool = { false }) throws -> GenerationResult {
        try generate(request, progress: { _ in }, isCancelled: isCancelled)
    }

    /// Runs `request` on the caller's task; cancelling the task stops it at the next step.
    public func generate(_ request: GenerationRequest, progress: (GenerationProgress) -> Void = { _ in }) async throws -> GenerationResult {
        try generate(request, progress: progress, isCancelled: { Task.isCancelled })
    }
}
