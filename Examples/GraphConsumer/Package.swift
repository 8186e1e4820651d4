// swift-tools-version:6.0
// A program that embeds Kiln as a dependency by path: proves Kiln builds without unsafe flags and
// that its public API is enough to run a graph on the default Vulkan device. The dependency is
// named explicitly because a path dependency is otherwise known by its folder's name, which
// differs between clones.
import PackageDescription

let package = Package(
    name: "GraphConsumer",
    dependencies: [.package(name: "Kiln", path: "../..")],
    targets: [
        .executableTarget(name: "GraphConsumer", dependencies: [.product(name: "Kiln", package: "Kiln")]),
    ]
)
