/// The GLSL sources of every Kiln kernel, embedded at build time (see Package.swift), by file name.
public enum ShaderLibrary {
    public static let sources: [String: [UInt8]] = [
        "common.glsl": PackageResources.common_glsl,
        "attention.comp": PackageResources.attention_comp,
        "conv2d.comp": PackageResources.conv2d_comp,
        "elementwise.comp": PackageResources.elementwise_comp,
        "matmul.comp": PackageResources.matmul_comp,
        "movement.comp": PackageResources.movement_comp,
        "normalization.comp": PackageResources.normalization_comp,
        "winograd.comp": PackageResources.winograd_comp,
    ]

    /// The source text of `file`, or nil if no such shader is embedded.
    public static func source(_ file: String) -> String? {
        sources[file].map { String(decoding: $0, as: UTF8.self) }
    }
}
