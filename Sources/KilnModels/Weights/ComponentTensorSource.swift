import KilnGraph

/// Several components' tensors under one key space, each behind its own prefix
/// (`text_encoder.`, `text_encoder_2.`), so one graph can bind the weights of two models.
public struct ComponentTensorSource: TensorSource {
    /// (prefix without its dot, source), e.g. `("text_encoder_2", bigG.weights)`.
    public let components: [(prefix: String, source: TensorSource)]

    public init(_ components: [(prefix: String, source: TensorSource)]) {
        self.components = components
    }

    public var origin: String { components.map { "\($0.prefix): \($0.source.origin)" }.joined(separator: ", ") }
    public var names: [String] { components.flatMap { component in component.source.names.map { component.prefix + "." + $0 } } }

    public func shape(of name: String) -> Shape? { route(name).flatMap { $0.source.shape(of: $0.key) } }

    public func shape(of name: String, expected: Shape) -> Shape? {
        route(name).flatMap { $0.source.shape(of: $0.key, expected: expected) }
    }

    public func load(_ name: String) throws -> HostTensor {
        guard let (source, key) = route(name) else { throw WeightError.missing(origin: origin, name: name, expected: nil) }
        return try source.load(key)
    }

    private func route(_ name: String) -> (source: TensorSource, key: String)? {
        for (prefix, source) in components where name.hasPrefix(prefix + ".") {
            return (source, String(name.dropFirst(prefix.count + 1)))
        }
        return nil
    }
}
