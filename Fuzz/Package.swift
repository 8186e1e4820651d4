// swift-tools-version:6.0
// Coverage-guided fuzzing of every Kiln parser with libFuzzer: one executable holding every target,
// chosen by KILN_FUZZ_TARGET, so there is one instrumented build and one link. Build and run it
// with scripts/fuzz.sh, which adds `-sanitize=fuzzer,address` for Kiln's modules too (flags in
// this file reach only this package's own target). Kiln's own Package.swift stays free of
// unsafe flags; this package may use them.
import PackageDescription

let package = Package(
    name: "KilnFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "Kiln", path: "..")],
    targets: [
        .target(name: "CLibFuzzer"),
        .executableTarget(
            name: "kiln-fuzz",
            dependencies: [
                .product(name: "Kiln", package: "Kiln"),
                .product(name: "KilnRender", package: "Kiln"),
                .product(name: "KilnServer", package: "Kiln"),
                "CLibFuzzer",
            ],
            path: "Sources/KilnFuzz",
            // libFuzzer supplies main(); the Swift code only defines LLVMFuzzerTestOneInput.
            swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer,address"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]),
    ]
)
