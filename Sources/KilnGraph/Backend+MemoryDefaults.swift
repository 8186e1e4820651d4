import Foundation

extension Backend {
    /// Host backends keep every activation in RAM: a quarter of physical memory leaves room for
    /// weights, the caller's own buffers and other processes.
    public var activationBudgetBytes: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 4) }

    /// Host backends hold weights and activations in RAM.
    public var memoryCapacityBytes: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    /// The graph as given, planned with weights outside the arena.
    public func plannedArenaBytes(_ graph: Graph, outputs: [Tensor]) -> Int {
        MemoryPlan(activationsOf: graph, outputs: outputs).arenaBytes
    }
}
