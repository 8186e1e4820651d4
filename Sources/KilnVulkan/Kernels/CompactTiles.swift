import Foundation
import KilnGraph

/// Where a graph's matmul, conv2d and attention nodes take compact register tiles instead of the
/// tuned ones, on CPU devices (`KernelVariant.automatic`).
///
/// lavapipe's LLVM compiles each kernel variant at its first dispatch, and the tuned tiles unroll
/// into large shaders: 3-20 s of one core each on this machine (an 8 x 32 conv2d row window, a
/// four-deep 16 x 16 matmul, 16-query attention) against 0.2-0.7 s for the compact tile
/// (BENCHMARKS.md, "Cold start"). A tuned tile pays that back only through the work it runs:
/// - a graph that does less than `smallGraphWork` per run takes compact tiles everywhere: it runs
///   in well under a second with them (compact tiles run at 1-3 GFLOP/s here, tuned ones at 3-30),
///   so no number of runs a first image makes wins back a minute of compiling;
/// - in a larger graph, the nodes that would share one tuned pipeline take compact tiles when their
///   work together is below `smallPipelineWork` per run: the tuned tile would save them a few
///   milliseconds per run.
/// The compact tile is one shape for every node, so a small model compiles a handful of small shaders.
public enum CompactTiles {
    /// Work per run (FLOPs) below which a whole graph takes compact tiles.
    public static let smallGraphWork: Double = 2e9
    /// Work per run (FLOPs) of the nodes sharing one tuned pipeline below which they take compact
    /// tiles in a larger graph.
    public static let smallPipelineWork: Double = 25e6

    /// Indices into `contexts` of the nodes that should take compact tiles, given the dispatches
    /// `KernelTable` chose for each with tuned tiles.
    static func nodesPreferringCompactTiles(_ dispatches: [[Dispatch]], contexts: [KernelContext], graph: Graph) -> [Int] {
        var work: [PipelineKey: Double] = [:]
        var candidates: [(index: Int, key: PipelineKey)] = []
        var graphWork: Double = 0
        for (index, context) in contexts.enumerated() {
            let flops = graph.flops(of: context.node.id)
            graphWork += flops
            guard context.variant == .automatic, context.useRegisterBlockedKernels, takesCompactTiles(context.node.operation),
                  let key = dispatches[index].first?.key else { continue }
            work[key, default: 0] += flops
            candidates.append((index, key))
        }
        let compact = { (key: PipelineKey) in graphWork < smallGraphWork || work[key, default: 0] < smallPipelineWork }
        if PipelineLog.enabled {
            for (key, flops) in work.sorted(by: { $0.value < $1.value }) {
                let nodes = candidates.filter { $0.key == key }.count
                PipelineLog.write(String(format: "%@ tiles for %d nodes of %.1f MFLOP (graph %.1f MFLOP), tuned: %@",
                                         compact(key) ? "compact" : "tuned", nodes, flops / 1e6, graphWork / 1e6, key.description))
            }
        }
        return candidates.filter { compact($0.key) }.map(\.index)
    }

    /// The ops whose kernels have a compact tile.
    static func takesCompactTiles(_ operation: KilnGraph.Operation) -> Bool {
        switch operation {
        case .matmul, .conv2d, .attention: true
        default: false
        }
    }
}
