import Foundation
import KilnGraph
import KilnModels

/// One component's weights as graphs bind them: the checkpoint's, or the checkpoint's with
/// LoRA changes merged (`current`), with the residency their device copies live in. Graphs are
/// always built over `current`; when it changes, the copies already on the device are
/// rewritten in place (`LoRAAdapters`).
final class AdaptedWeights: @unchecked Sendable {
    let label: String
    let base: TensorSource
    let residency: ResidentWeights
    private let lock = NSLock()
    private var merged: MergedTensorSource?

    init(label: String, base: TensorSource, residency: ResidentWeights? = nil) {
        self.label = label
        self.base = base
        self.residency = residency ?? ResidentWeights(label: label)
    }

    /// What graphs bind: the checkpoint with the applied changes.
    var current: TensorSource { lock.withLock { merged ?? base } }

    /// Keys whose values differ from the checkpoint's.
    var changedKeys: Set<String> { lock.withLock { Set(merged?.changes.keys ?? [:].keys) } }

    /// Sets the changes; returns the keys whose values change (old and new changes together).
    func setChanges(_ changes: [String: [MergedTensorSource.Term]]) -> Set<String> {
        lock.withLock {
            let affected = Set(merged?.changes.keys ?? [:].keys).union(changes.keys)
            merged = changes.isEmpty ? nil : MergedTensorSource(base: base, changes: changes)
            return affected
        }
    }
}

/// A checkpoint's tensors with LoRA changes added: `W + Σ multiplier · ΔW` for the changed keys,
/// computed in f32 from the memory-mapped checkpoint (the backend rounds the sum once, to its
/// storage type); every other key passes through.
struct MergedTensorSource: TensorSource {
    /// One change to one weight: a module of a file, the rows of its change that land here.
    struct Term: Sendable {
        let multiplier: Float
        let module: LoRAModule
        let file: LoRAFile
        let placement: LoRAPlacement
        let deltas: DeltaMemo
    }

    let base: TensorSource
    let changes: [String: [Term]]

    var names: [String] { base.names }
    var origin: String { base.origin }
    func shape(of name: String) -> Shape? { base.shape(of: name) }
    func shape(of name: String, expected: Shape) -> Shape? { base.shape(of: name, expected: expected) }

    func load(_ name: String) throws -> HostTensor {
        var tensor = try base.load(name)
        guard let terms = changes[name] else { return tensor }
        let dtype = tensor.dtype
        tensor.dtype = .float32
        for term in terms {
            let delta = try term.deltas.delta(term.module, in: term.file)
            let rowWidth = delta.shape.elementCount / max(delta.shape[0], 1)
            let rows = term.placement.rows ?? 0..<delta.shape[0]
            var slice = Array(delta.scalars[(rows.lowerBound * rowWidth)..<(rows.upperBound * rowWidth)])
            if term.placement.swapsHalves {
                let half = slice.count / 2
                slice = Array(slice[half...] + slice[..<half])
            }
            guard slice.count == tensor.scalars.count else {
                throw LoRAError.wrongShape(file: term.file.url.path, module: term.module.name, target: name, delta: delta.shape, weight: tensor.shape)
            }
            for index in slice.indices { tensor.scalars[index] += term.multiplier * slice[index] }
        }
        tensor.dtype = dtype
        return tensor
    }
}

/// Each module's change, computed once while a set of LoRAs is merged (a fused q/k/v change
/// serves three weights); after `clear` (the merge is done) changes are computed afresh each
/// time a weight is read again (a released encoder uploading anew), and nothing is kept.
final class DeltaMemo: @unchecked Sendable {
    private let lock = NSLock()
    private var deltas: [String: HostTensor] = [:]
    private var keeps = true

    func delta(_ module: LoRAModule, in file: LoRAFile) throws -> HostTensor {
        let key = file.url.path + "\u{0}" + module.name
        if let found = lock.withLock({ deltas[key] }) { return found }
        let computed = try module.delta(in: file.tensors)
        lock.withLock { if keeps { deltas[key] = computed } }
        return computed
    }

    func clear() {
        lock.withLock {
            keeps = false
            deltas.removeAll()
        }
    }
}

/// A tensor source as a backend's constant values (every key floating point).
struct TensorSourceValues: ConstantValues {
    let source: TensorSource

    func shape(ofConstant name: String) -> (shape: Shape, isInteger: Bool)? { source.shape(of: name).map { ($0, false) } }
    func value(ofConstant name: String) throws -> HostTensor {
        var tensor = try source.load(name)
        tensor.dtype = .float32
        return tensor
    }
}
