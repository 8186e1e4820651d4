import KilnModels

/// The model families Kiln runs, each behind `DiffusionPipeline`.
public enum ModelFamily: String, Sendable, CaseIterable, Codable {
    case stableDiffusion1 = "sd1"
    case stableDiffusion2 = "sd2"
    case stableDiffusionXL = "sdxl"
    case stableDiffusion3 = "sd3"
    case flux
    case diT = "dit"

    public var displayName: String {
        switch self {
        case .stableDiffusion1: "Stable Diffusion 1.x"
        case .stableDiffusion2: "Stable Diffusion 2.x"
        case .stableDiffusionXL: "Stable Diffusion XL"
        case .stableDiffusion3: "Stable Diffusion 3"
        case .flux: "FLUX.1"
        case .diT: "DiT"
        }
    }

    init(_ family: StableDiffusionFamily) {
        switch family {
        case .sd1: self = .stableDiffusion1
        case .sd2: self = .stableDiffusion2
        case .sdxl: self = .stableDiffusionXL
        }
    }
}
