import KilnGraph

/// One module of a LoRA file placed on a model: which component it changes and where.
public struct LoRAChange: Sendable {
    public let component: String
    public let module: LoRAModule
    public let placements: [LoRAPlacement]
}

extension LoRAFile {
    /// Every module of the file placed on `components`, each change's shape checked against
    /// the weights it lands on. A module that lands nowhere is an error listing every such
    /// module: a LoRA applies whole or not at all.
    public func changes(on components: [LoRAComponent]) throws -> [LoRAChange] {
        var changes: [LoRAChange] = [], unmapped: [String] = []
        let lookups = components.map { ComponentLookup($0) }
        // Original-named modules are placed together per component: fused splits need them all.
        var pendingOriginal: [Int: [(module: LoRAModule, key: String)]] = [:]
        for module in modules {
            var placed = false
            for (index, lookup) in lookups.enumerated() {
                switch lookup.locate(module.name) {
                case .none: continue
                case .placements(let placements):
                    changes.append(LoRAChange(component: lookup.component.label, module: module, placements: placements))
                case .original(let key):
                    pendingOriginal[index, default: []].append((module, key))
                }
                placed = true
                break
            }
            if !placed { unmapped.append(module.name) }
        }
        for (index, pending) in pendingOriginal.sorted(by: { $0.key < $1.key }) {
            let component = components[index]
            guard let original = component.original else { continue }
            var shapes: [String: Shape] = [:]
            for (module, key) in pending { shapes[key] = try module.deltaShape(in: tensors) }
            let placements = try original.place(shapes)
            for (module, key) in pending {
                guard let found = placements[key], !found.isEmpty else {
                    unmapped.append(module.name)
                    continue
                }
                changes.append(LoRAChange(component: component.label, module: module, placements: found))
            }
        }
        if !unmapped.isEmpty { throw LoRAError.unmappedModules(file: url.path, modules: unmapped.sorted()) }
        for change in changes {
            guard let component = components.first(where: { $0.label == change.component }) else { continue }
            let delta = try change.module.deltaShape(in: tensors)
            let rowWidth = delta.rank > 0 ? delta.elementCount / max(delta[0], 1) : 0
            for placement in change.placements {
                guard let weight = component.weights.shape(of: placement.key) else {
                    throw LoRAError.unmappedModules(file: url.path, modules: [change.module.name])
                }
                let rows = placement.rows?.count ?? delta[0]
                let fits = (placement.rows?.upperBound ?? 0) <= delta[0] && rows * rowWidth == weight.elementCount && rows == weight[0]
                if !fits {
                    throw LoRAError.wrongShape(file: url.path, module: change.module.name, target: placement.key, delta: delta, weight: weight)
                }
            }
        }
        return changes
    }
}

/// Finds the weights a module name means inside one component.
struct ComponentLookup {
    enum Location {
        case none
        case placements([LoRAPlacement])
        /// An original checkpoint's weight key, placed through the component's original names.
        case original(String)
    }

    let component: LoRAComponent
    let paths: Set<String>
    /// Kohya's underscored form of every module path (and of `text_model.`-less CLIP paths
    /// with the prefix kohya always writes).
    let underscored: [String: String]

    init(_ component: LoRAComponent) {
        self.component = component
        paths = component.modulePaths
        var underscored: [String: String] = [:]
        for path in paths {
            underscored[path.replacingOccurrences(of: ".", with: "_")] = path
            if !path.hasPrefix("text_model.") && component.label.hasPrefix("text_encoder") {
                underscored["text_model_" + path.replacingOccurrences(of: ".", with: "_")] = path
            }
        }
        self.underscored = underscored
    }

    func locate(_ name: String) -> Location {
        for prefix in component.kohyaPrefixes where name.hasPrefix(prefix) {
            let local = String(name.dropFirst(prefix.count))
            if let path = underscored[local] { return .placements([LoRAPlacement(key: path + ".weight")]) }
            if let original = component.original { return .original(Self.dotted(local, compounds: original.compounds) + ".weight") }
            return .none
        }
        for prefix in component.diffusersPrefixes where name.hasPrefix(prefix) {
            return dotted(String(name.dropFirst(prefix.count)))
        }
        if let original = component.original {
            for prefix in original.prefixes where !prefix.isEmpty && name.hasPrefix(prefix) {
                return .original(String(name.dropFirst(prefix.count)) + ".weight")
            }
            if original.prefixes.contains(""), let root = name.split(separator: ".").first, original.roots.contains(String(root)) {
                return .original(name + ".weight")
            }
        }
        if component.takesBareNames, paths.contains(name) { return .placements([LoRAPlacement(key: name + ".weight")]) }
        return .none
    }

    private func dotted(_ path: String) -> Location {
        if paths.contains(path) { return .placements([LoRAPlacement(key: path + ".weight")]) }
        if component.label.hasPrefix("text_encoder"), path.hasPrefix("text_model."), paths.contains(String(path.dropFirst("text_model.".count))) {
            return .placements([LoRAPlacement(key: String(path.dropFirst("text_model.".count)) + ".weight")])
        }
        return .none
    }

    /// `input_blocks_4_1_transformer_blocks_0_attn1_to_q` -> `input_blocks.4.1.transformer_blocks.0.attn1.to_q`:
    /// underscores become dots except inside the known words.
    static func dotted(_ underscored: String, compounds: Set<String>) -> String {
        let words = underscored.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        var parts: [String] = []
        var index = 0
        while index < words.count {
            if index + 1 < words.count, compounds.contains(words[index] + "_" + words[index + 1]) {
                parts.append(words[index] + "_" + words[index + 1])
                index += 2
            } else {
                parts.append(words[index])
                index += 1
            }
        }
        return parts.joined(separator: ".")
    }
}
