import Foundation
import Kiln
import Testing

/// A pipeline uploads its weights once: later requests of any size prepare graphs but upload no
/// weight bytes (counted through the backend), on both backends and for every family. Each test
/// has a device of its own so other suites' uploads do not count.
@Suite(.serialized) struct ResidentModelTests {
    static func backends() throws -> [(Backend, DType)] {
        [(CPUBackend(), .float32), (try VulkanBackend(), .float16)]
    }

    /// First request at `first`, then `second`, then `first` again.
    static func expectOneUpload(_ family: ModelFamily, first: (Int, Int), second: (Int, Int), labels: [[Int]]? = nil) throws {
        for (backend, dtype) in try backends() {
            let pipeline = try Pipelines.open(try ModelFolders.folder(family), backend: backend, dtype: dtype)
            let start = backend.uploadedConstantBytes
            var requests = [first, second, first].map { ModelFolders.request(family, pipeline: pipeline, width: $0.0, height: $0.1, steps: 1) }
            if let labels { for index in requests.indices { requests[index].conditioning = .classLabels(labels[index]) } }
            _ = try pipeline.generate(requests[0])
            let afterFirst = backend.uploadedConstantBytes
            #expect(afterFirst > start, "\(family) \(backend.name): the first request uploads the weights")
            #expect(afterFirst - start <= pipeline.weightBytes, "\(family) \(backend.name): no weight uploaded twice")
            for request in requests.dropFirst() { _ = try pipeline.generate(request) }
            #expect(backend.uploadedConstantBytes == afterFirst, "\(family) \(backend.name): \(backend.uploadedConstantBytes - afterFirst) bytes uploaded after the first request")
        }
    }

    @Test func stableDiffusion() throws { try Self.expectOneUpload(.stableDiffusion1, first: (64, 64), second: (64, 48)) }
    @Test func stableDiffusionXL() throws { try Self.expectOneUpload(.stableDiffusionXL, first: (64, 64), second: (48, 64)) }
    @Test func stableDiffusion3() throws { try Self.expectOneUpload(.stableDiffusion3, first: (32, 24), second: (48, 24)) }
    @Test func flux() throws { try Self.expectOneUpload(.flux, first: (32, 32), second: (48, 32)) }
    @Test func diT() throws { try Self.expectOneUpload(.diT, first: (64, 64), second: (64, 64), labels: [[1], [1, 2], [1]]) }

    /// Image-to-image adds the VAE's encoder once, then nothing more.
    @Test func imageToImageUploadsTheEncoderOnce() throws {
        let backend = CPUBackend()
        let pipeline = try Pipelines.open(try ModelFolders.folder(.stableDiffusion1), backend: backend, dtype: .float32)
        var request = ModelFolders.request(.stableDiffusion1, pipeline: pipeline, steps: 2)
        _ = try pipeline.generate(request)
        request.mode = .imageToImage(image: ShapedArray(repeating: 0.2, shape: [1, 3, 64, 64]), strength: 0.5)
        _ = try pipeline.generate(request)
        let afterEncoder = backend.uploadedConstantBytes
        request.mode = .imageToImage(image: ShapedArray(repeating: -0.3, shape: [1, 3, 64, 64]), strength: 0.7)
        _ = try pipeline.generate(request)
        #expect(backend.uploadedConstantBytes == afterEncoder)
    }

    /// Progress reports carry the step's latents; the preview is the latent-to-RGB projection at
    /// the latent size, computed only on request.
    @Test(arguments: [ModelFamily.stableDiffusion1, .stableDiffusion3, .flux, .diT])
    func progressCarriesPreviews(_ family: ModelFamily) throws {
        let pipeline = try Pipelines.open(try ModelFolders.folder(family), backend: CPUBackend(), dtype: .float32)
        let request = ModelFolders.request(family, pipeline: pipeline, steps: 2)
        var previews: [PreviewImage] = []
        var latentShapes: [[Int]] = []
        let result = try pipeline.generate(request, progress: { progress in
            guard progress.stage == .denoising, let latents = progress.latents else { return }
            latentShapes.append(latents.latents().shape)
            if let preview = latents.preview() { previews.append(preview) }
        }, isCancelled: { false })
        #expect(latentShapes == Array(repeating: result.latents.shape, count: result.timesteps.count), "\(family)")
        #expect(previews.count == result.timesteps.count, "\(family): a preview per model call")
        let (height, width) = (result.latents.shape[2], result.latents.shape[3])
        #expect(previews.allSatisfy { $0.width == width && $0.height == height && $0.pixels.count == width * height * 3 }, "\(family)")
        #expect(previews.last?.enlarged(by: 8).width == width * 8)
    }

    /// The projection as its definition: bias + latents · factors, mapped from [-1, 1] to bytes.
    @Test func previewProjectionArithmetic() throws {
        let projection = LatentRGBProjection(factors: [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]], bias: [0, 0, 0.5])
        // Channels over the two pixels: [1, -1], [0, 0.5], [-1, 0], [0, 0].
        let latents = ShapedArray(shape: [1, 4, 1, 2], scalars: [1, -1, 0, 0.5, -1, 0, 0, 0])
        let preview = try #require(projection.preview(of: latents))
        // Pixel 0: (1, 0, -1 + 0.5) -> bytes of (1, 0.5, 0.25); pixel 1: (-1, 0.5, 0.5) -> (0, 0.75, 0.75).
        #expect(preview.pixels == [255, 127, 63, 0, 191, 191])
        #expect(LatentRGBProjection.flux.preview(of: latents) == nil, "16 channels do not take 4")
    }
}
