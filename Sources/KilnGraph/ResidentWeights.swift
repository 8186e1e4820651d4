import Foundation

/// The device copies of one model component's weights, shared by every graph prepared over them
/// for as long as the component stays loaded: a long-running process that generates at a new
/// size pays a graph preparation, never a second weight upload.
///
/// A backend keeps its copies in a store of its own type, made the first time a graph over these
/// weights is prepared on it (`store(for:make:)`). Graphs hold the store they used, so releasing
/// (`release()`) frees the device memory once the last of those graphs is gone too.
///
/// ```swift
/// let unet = ResidentWeights(label: "unet")
/// let binder = WeightBinder(graph: graph, source: weights, dtype: .float16, residency: unet)
/// let prepared = try backend.prepare(graph, outputs: [noise], constants: binder.constants())   // uploads
/// // ... a second graph bound with `residency: unet` on the same backend uploads nothing.
/// ```
public final class ResidentWeights: @unchecked Sendable {
    /// What the weights are (`unet`, `text_encoder`, ...), for errors and accounting.
    public let label: String
    private let lock = NSLock()
    private var stores: [ObjectIdentifier: AnyObject] = [:]

    public init(label: String) {
        self.label = label
    }

    /// The store `owner` (a backend or its device) keeps for these weights, made by `make` the
    /// first time. The store must keep `owner` alive when its identity matters.
    public func store<Store: AnyObject>(for owner: AnyObject, make: () throws -> Store) rethrows -> Store {
        try lock.withLock {
            if let existing = stores[ObjectIdentifier(owner)] as? Store { return existing }
            let made = try make()
            stores[ObjectIdentifier(owner)] = made
            return made
        }
    }

    /// The store `owner` keeps for these weights, if it made one.
    public func existingStore<Store: AnyObject>(for owner: AnyObject) -> Store? {
        lock.withLock { stores[ObjectIdentifier(owner)] as? Store }
    }

    /// Forgets every backend's copies: graphs prepared earlier keep theirs until they are
    /// released, and the next preparation uploads again.
    public func release() {
        lock.withLock { stores.removeAll() }
    }

    /// How many backends hold copies.
    public var storeCount: Int { lock.withLock { stores.count } }
}

/// The key a backend files one resident constant under: its name, shape and storage type.
public func residentKey(_ name: String, _ shape: Shape, _ dtype: DType) -> String { "\(name)|\(shape)|\(dtype.shortName)" }

