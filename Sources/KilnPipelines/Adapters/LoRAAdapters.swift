import Foundation
import KilnGraph
import KilnModels

/// The LoRAs merged into one pipeline's loaded weights. A request names its LoRAs; `apply`
/// merges exactly those: the changed weights are rewritten on the device in place (in f32,
/// rounded once to the storage type), and weights a previous request changed but this one does
/// not are rewritten from the memory-mapped checkpoint. A request with the same set as the last
/// uploads nothing. A file whose modules do not all map onto the model is refused whole.
final class LoRAAdapters: @unchecked Sendable {
    /// A component LoRAs may change, and its weights as graphs bind them.
    struct Slot {
        let names: LoRAComponent
        let weights: AdaptedWeights
        /// The text encoders take a LoRA's text-encoder weight.
        var isTextEncoder: Bool { weights.label.hasPrefix("text_encoder") }
    }

    let slots: [Slot]
    let backend: Backend
    private let lock = NSLock()
    private var files: [URL: (identity: FileIdentity, file: LoRAFile, changes: [LoRAChange], hash: String?)] = [:]
    private var applied: [LoRARequest] = []

    init(slots: [Slot], backend: Backend) {
        self.slots = slots
        self.backend = backend
    }

    /// Opens and places every LoRA of `requests` without changing anything: the errors `apply` would throw.
    func check(_ requests: [LoRARequest]) throws {
        try lock.withLock {
            for request in requests {
                if !request.weight.isFinite || !(request.textEncoderWeight?.isFinite ?? true) {
                    throw PipelineError.invalidRequest("LoRA \(request.name): weight \(request.weight) is not a finite number")
                }
                _ = try opened(request.url)
            }
        }
    }

    /// Merges `requests` (and only those) into the weights; what the images' metadata records.
    func apply(_ requests: [LoRARequest]) throws -> [AppliedLoRA] {
        try lock.withLock {
            let entries = try requests.map { try (request: $0, entry: opened($0.url)) }
            if requests != applied || entries.contains(where: { $0.entry.changed }) {
                let memo = DeltaMemo()
                defer { memo.clear() }
                var terms: [String: [String: [MergedTensorSource.Term]]] = [:]
                for (request, entry) in entries {
                    for change in entry.changes {
                        guard let slot = slots.first(where: { $0.weights.label == change.component }) else { continue }
                        let multiplier = slot.isTextEncoder ? request.textEncoderWeight ?? request.weight : request.weight
                        for placement in change.placements {
                            terms[change.component, default: [:]][placement.key, default: []].append(
                                .init(multiplier: multiplier, module: change.module, file: entry.file, placement: placement, deltas: memo))
                        }
                    }
                }
                applied = []
                for slot in slots {
                    let affected = slot.weights.setChanges(terms[slot.weights.label] ?? [:])
                    if affected.isEmpty { continue }
                    do {
                        try backend.rewriteResidentConstants(affected, of: slot.weights.residency, from: TensorSourceValues(source: slot.weights.current))
                    } catch {
                        // The device copies may be half rewritten: drop them, the next graph uploads afresh.
                        slot.weights.residency.release()
                        throw error
                    }
                }
                applied = requests
            }
            return try entries.map { request, entry in
                AppliedLoRA(name: request.name, weight: request.weight, textEncoderWeight: request.textEncoderWeight, sha256: try hash(request.url))
            }
        }
    }

    /// Takes every LoRA out (the checkpoint's values back on the device).
    func removeAll() throws { _ = try apply([]) }

    // MARK: Files

    struct FileIdentity: Equatable {
        let size: Int
        let modified: Date?
    }

    /// The file at `url`, opened and placed once while it stays unchanged on disk.
    private func opened(_ url: URL) throws -> (file: LoRAFile, changes: [LoRAChange], changed: Bool) {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        } catch {
            throw PipelineError.invalidRequest("LoRA \(url.path): no such file")
        }
        let identity = FileIdentity(size: (attributes[.size] as? NSNumber)?.intValue ?? -1, modified: attributes[.modificationDate] as? Date)
        if let cached = files[url], cached.identity == identity { return (cached.file, cached.changes, false) }
        do {
            let file = try LoRAFile(url: url)
            let changes = try file.changes(on: slots.map(\.names))
            files[url] = (identity, file, changes, nil)
            return (file, changes, true)
        } catch let error as LoRAError {
            throw PipelineError.invalidRequest("LoRA \(error)")
        }
    }

    private func hash(_ url: URL) throws -> String {
        if let hash = files[url]?.hash { return hash }
        guard let entry = files[url] else { return "" }
        let hash = try entry.file.addnetHash()
        files[url] = (entry.identity, entry.file, entry.changes, hash)
        return hash
    }
}
