// Runs y = silu(x @ w + b) — three ops — on the default Vulkan device and on the CPU reference,
// prints both, and exits non-zero if they disagree.
import Kiln

let graph = Graph()
let x = graph.input("x", [2, 3])
let product = try graph.matmul(x, graph.constant("w", [3, 2]))
let y = try graph.silu(try graph.add(product, graph.constant("b", [2])))

let constants = [
    "w": HostTensor(shape: [3, 2], scalars: [0.5, -1, 0.25, 2, -0.75, 1]),
    "b": HostTensor(shape: [2], scalars: [0.1, -0.2]),
]
let inputs = ["x": HostTensor(shape: [2, 3], scalars: [1, 2, 3, -1, 0.5, 4])]

let gpu = try VulkanBackend()
let onDevice = try gpu.run(graph, outputs: [y], inputs: inputs, constants: constants)[0]
let onCPU = try CPUBackend().run(graph, outputs: [y], inputs: inputs, constants: constants)[0]

print("device:", gpu.device.info.name)
print("vulkan:", onDevice.scalars)
print("cpu:   ", onCPU.scalars)
// The largest difference relative to the largest reference magnitude (Kiln's verification tables
// are not part of the library product, so the example measures it itself).
let scale = onCPU.scalars.map(abs).max() ?? 0
let error = zip(onDevice.scalars, onCPU.scalars).map { abs($0 - $1) }.max().map { $0 / max(scale, .leastNormalMagnitude) } ?? 0
print("max relative error:", error)
if !(error < 1e-5) || !onDevice.scalars.allSatisfy(\.isFinite) {
    print("MISMATCH")
    exit(1)
}

#if canImport(Glibc)
import Glibc
#endif
