import Foundation
import Kiln

/// The tiny models of every family as loadable folders, and copies of them with a poisoned weight.
enum ModelFolders {
    /// A complete, loadable folder of `family`'s tiny test model.
    static func folder(_ family: ModelFamily) throws -> URL {
        switch family {
        case .stableDiffusion1: try PipelineFixtures.modelFolder("sd1")
        case .stableDiffusion2: try PipelineFixtures.modelFolder("sd2")
        case .stableDiffusionXL: try PipelineFixtures.modelFolder("sdxl")
        case .stableDiffusion3: try SD3PipelineParityTests.modelFolder()
        case .flux: try FluxFullPipelineTests.modelFolder()
        case .diT: DiTPipelineParityTests.model
        }
    }

    /// The denoiser component and a weight inside it that every output depends on.
    static func denoiserWeight(_ family: ModelFamily) -> (component: String, file: String, tensor: String) {
        switch family {
        case .stableDiffusion1, .stableDiffusion2:
            ("unet", "diffusion_pytorch_model.safetensors", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight")
        case .stableDiffusionXL:
            ("unet", "diffusion_pytorch_model.safetensors", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight")
        case .stableDiffusion3, .flux, .diT:
            ("transformer", "diffusion_pytorch_model.safetensors", "transformer_blocks.0.attn\(family == .diT ? "1" : "").to_q.weight")
        }
    }

    /// A copy of `family`'s folder (links, but for the denoiser) whose denoiser has `value` in
    /// the first element of one attention weight, as a broken checkpoint would.
    static func poisoned(_ family: ModelFamily, value: Float = .nan) throws -> URL {
        let source = try folder(family)
        let manager = FileManager.default
        let copy = manager.temporaryDirectory.appendingPathComponent("kiln-poisoned-\(family.rawValue)-\(UUID().uuidString)")
        try manager.createDirectory(at: copy, withIntermediateDirectories: true)
        let (component, file, tensor) = denoiserWeight(family)
        for entry in try manager.contentsOfDirectory(atPath: source.path) where entry != component {
            try manager.createSymbolicLink(at: copy.appendingPathComponent(entry),
                                           withDestinationURL: source.appendingPathComponent(entry).resolvingSymlinksInPath())
        }
        let from = source.appendingPathComponent(component).resolvingSymlinksInPath(), to = copy.appendingPathComponent(component)
        try manager.createDirectory(at: to, withIntermediateDirectories: true)
        for entry in try manager.contentsOfDirectory(atPath: from.path) where entry != file {
            try manager.copyItem(at: from.appendingPathComponent(entry), to: to.appendingPathComponent(entry))
        }
        let weights = try SafeTensorsSource(files: [from.appendingPathComponent(file)])
        var tensors: [String: HostTensor] = [:]
        for name in weights.names { tensors[name] = try weights.load(name) }
        guard var poisoned = tensors[tensor] else { throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: tensor]) }
        poisoned.scalars[0] = value
        tensors[tensor] = poisoned
        try SafeTensorsFile.write(tensors, to: to.appendingPathComponent(file))
        return copy
    }

    /// A small request `family`'s tiny model takes.
    static func request(_ family: ModelFamily, pipeline: any DiffusionPipeline, width: Int? = nil, height: Int? = nil, steps: Int = 2) -> GenerationRequest {
        var request = pipeline.defaults.request(family == .diT ? .classLabels([1]) : .prompt("a red boat", negative: nil), seed: 7)
        request.steps = steps
        if family != .diT {
            request.width = width ?? 64
            request.height = height ?? 64
        }
        if family == .stableDiffusion3 || family == .flux { request.options.maxSequenceLength = 8 }
        if family == .stableDiffusion3 {
            request.width = width ?? 32
            request.height = height ?? 24
        }
        return request
    }
}
