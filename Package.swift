// swift-tools-version:6.0
import PackageDescription

/// Every GLSL file in Shaders/ is embedded into the binary, so `kiln` and programs that embed Kiln
/// need no shader files at run time. Add a new kernel family here and in ShaderLibrary.swift.
let shaderFiles = [
    "common.glsl",
    "attention.comp",
    "conv2d.comp",
    "elementwise.comp",
    "matmul.comp",
    "movement.comp",
    "normalization.comp",
    "winograd.comp",
]

let package = Package(
    name: "Kiln",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Kiln", targets: ["Kiln"]),
        .executable(name: "kiln", targets: ["kiln"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CVulkan", path: "Sources/CVulkan", pkgConfig: "vulkan",
            providers: [.apt(["libvulkan-dev"])]),
        .systemLibrary(
            name: "CGlslang", path: "Sources/CGlslang",
            providers: [.apt(["glslang-dev", "spirv-tools"])]),
        .systemLibrary(
            name: "CLibPNG", path: "Sources/CLibPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .target(name: "CKilnPNG", dependencies: ["CLibPNG"]),
        .target(name: "KilnImage", dependencies: ["CKilnPNG", "KilnGraph"]),
        .target(name: "KilnSceneAnalysis", dependencies: ["KilnImage"]),
        .target(name: "KilnDefaultModel", resources: [.copy("Resources/kiln-shapes")]),
        .target(name: "KilnShaders", path: "Shaders", resources: shaderFiles.map { .embedInCode($0) }),
        .target(name: "KilnGraph"),
        .target(name: "KilnCPU", dependencies: ["KilnGraph"]),
        .target(name: "KilnVulkan", dependencies: ["KilnGraph", "KilnShaders", "CVulkan", "CGlslang"]),
        .target(name: "KilnModels", dependencies: ["KilnGraph"]),
        .target(name: "KilnSampling"),
        .target(name: "KilnPipelines", dependencies: ["KilnGraph", "KilnModels", "KilnSampling"]),
        .target(name: "Kiln", dependencies: ["KilnGraph", "KilnCPU", "KilnVulkan", "KilnModels", "KilnSampling", "KilnPipelines", "KilnImage"]),
        .executableTarget(
            name: "kiln",
            dependencies: ["Kiln", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "kiln-kernel-benchmarks", dependencies: ["Kiln"], path: "Benchmarks/KernelBenchmarks"),
        .testTarget(
            name: "KilnTests", dependencies: ["Kiln", "KilnGraph", "KilnCPU", "KilnVulkan"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnModelsTests", dependencies: ["Kiln"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnSamplingTests", dependencies: ["KilnSampling"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnImageTests", dependencies: ["KilnImage"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnPipelinesTests", dependencies: ["Kiln"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnSceneAnalysisTests", dependencies: ["KilnSceneAnalysis", "KilnImage"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnSemanticTests", dependencies: ["Kiln", "KilnDefaultModel", "KilnSceneAnalysis"], resources: [.copy("Fixtures")]),
    ]
)
