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
        // Kiln's stable C interface (include/kiln.h) as a shared library. The file is
        // libKilnC.so (SwiftPM names it after the product, and `kiln` is the executable's name);
        // scripts/build-libkiln.sh installs it as libkiln.so, optionally self-contained.
        .library(name: "KilnC", type: .dynamic, targets: ["KilnC"]),
        // The render-farm runner and the HTTP server as libraries, for packages that drive their
        // parsers from outside (Fuzz/); `kiln` links them directly.
        .library(name: "KilnRender", targets: ["KilnRender"]),
        .library(name: "KilnServer", targets: ["KilnServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The HTTP server (`kiln serve`) only: the Kiln library product never depends on these.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
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
        .target(name: "KilnShaders", path: "Shaders", resources: shaderFiles.map { .embedInCode($0) }),
        .target(name: "KilnGraph"),
        .target(name: "KilnCPU", dependencies: ["KilnGraph"]),
        .target(name: "KilnVulkan", dependencies: ["KilnGraph", "KilnShaders", "CVulkan", "CGlslang"]),
        .target(name: "KilnModels", dependencies: ["KilnGraph"]),
        .target(name: "KilnSampling"),
        .target(name: "KilnPipelines", dependencies: ["KilnGraph", "KilnModels", "KilnSampling"]),
        // Kiln's own small model (scripts/default-model/train.py), opened when no model is given.
        .target(name: "KilnDefaultModel", resources: [.copy("Resources/kiln-shapes")]),
        .target(
            name: "Kiln",
            dependencies: ["KilnGraph", "KilnCPU", "KilnVulkan", "KilnModels", "KilnSampling", "KilnPipelines", "KilnImage", "KilnDefaultModel"]),
        // The op-case table, its verification against the CPU reference and the benchmark tables: what
        // `kiln verify`, `kiln bench`, the kernel benchmarks and the tests share. Not a product: programs
        // that embed Kiln never link it.
        .target(name: "KilnVerification", dependencies: ["KilnGraph", "KilnCPU", "KilnVulkan", "KilnModels"]),
        .target(name: "KilnRender", dependencies: ["Kiln"]),
        // Diffusion-DPO scoring front end: pairs files, image preparation, reports.
        .target(name: "KilnPreference", dependencies: ["Kiln"]),
        .systemLibrary(name: "CKiln", path: "Sources/CKiln"),
        .target(name: "KilnC", dependencies: ["Kiln", "CKiln"]),
        .target(
            name: "KilnServer",
            dependencies: [
                "Kiln", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.embedInCode("Page/index.html")]),
        .executableTarget(
            name: "kiln",
            dependencies: [
                "Kiln", "KilnRender", "KilnServer", "KilnPreference", "KilnVerification", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "kiln-kernel-benchmarks", dependencies: ["Kiln", "KilnVerification"], path: "Benchmarks/KernelBenchmarks"),
        .executableTarget(
            name: "kiln-pipeline-benchmarks", dependencies: ["Kiln"], path: "Benchmarks/PipelineBenchmarks", exclude: ["make_random_sd15.py"]),
        .testTarget(
            name: "KilnTests", dependencies: ["Kiln", "KilnGraph", "KilnCPU", "KilnVulkan", "KilnVerification"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnModelsTests", dependencies: ["Kiln", "KilnVerification"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnSamplingTests", dependencies: ["KilnSampling"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnImageTests", dependencies: ["KilnImage"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnPipelinesTests", dependencies: ["Kiln", "KilnRender", "KilnPreference", "KilnVerification"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnCTests", dependencies: ["KilnC", "CKiln", "Kiln"]),
        .testTarget(
            name: "KilnServerTests",
            dependencies: ["KilnServer", "Kiln", .product(name: "HummingbirdTesting", package: "hummingbird")]),
        .testTarget(name: "KilnSceneAnalysisTests", dependencies: ["KilnSceneAnalysis", "KilnImage"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KilnSemanticTests", dependencies: ["Kiln", "KilnDefaultModel", "KilnSceneAnalysis"], resources: [.copy("Fixtures")]),
    ]
)
