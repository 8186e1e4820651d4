/// Where a backend finds the values of a graph's constants (its weights) while preparing it.
///
/// A dictionary of loaded tensors is one kind; a model's bound weights are another, which reads
/// each tensor from its (memory-mapped) file only when the backend asks, so that a 12B-parameter
/// model never sits in host memory all at once: the Vulkan backend loads, converts and uploads
/// one tensor at a time.
public protocol ConstantValues {
    /// Shape of the value named `name` and whether it holds integers, or nil when there is none.
    /// Answered without loading the value.
    func shape(ofConstant name: String) -> (shape: Shape, isInteger: Bool)?
    /// The value itself (floating-point values as f32 in `scalars`, see `HostTensor`).
    func value(ofConstant name: String) throws -> HostTensor
    /// Where a backend keeps the device copy of `name` for other graphs to reuse, or nil when
    /// the prepared graph owns its copy.
    func residency(ofConstant name: String) -> ResidentWeights?
}

extension ConstantValues {
    public func residency(ofConstant name: String) -> ResidentWeights? { nil }
}

extension Dictionary: ConstantValues where Key == String, Value == HostTensor {
    public func shape(ofConstant name: String) -> (shape: Shape, isInteger: Bool)? {
        self[name].map { ($0.shape, $0.dtype == .int32) }
    }

    public func value(ofConstant name: String) throws -> HostTensor {
        guard let value = self[name] else { throw GraphError("constant", "no value supplied for constant '\(name)'") }
        return value
    }
}

extension ConstantValues {
    /// These values plus `extra` (tables computed on the host beside a model's weights, such as
    /// DiT's position embedding); names must not clash. With `residency` the tables stay on the
    /// device for other graphs too (a table's name and shape must then decide its values).
    public func adding(_ extra: [String: HostTensor], residentIn residency: ResidentWeights? = nil) -> any ConstantValues {
        CombinedConstantValues(base: self, extra: extra, extraResidency: residency)
    }
}

/// See `ConstantValues.adding(_:)`.
struct CombinedConstantValues: ConstantValues {
    let base: any ConstantValues
    let extra: [String: HostTensor]
    let extraResidency: ResidentWeights?

    func shape(ofConstant name: String) -> (shape: Shape, isInteger: Bool)? {
        extra.shape(ofConstant: name) ?? base.shape(ofConstant: name)
    }

    func value(ofConstant name: String) throws -> HostTensor {
        try extra[name] ?? base.value(ofConstant: name)
    }

    func residency(ofConstant name: String) -> ResidentWeights? {
        extra[name] == nil ? base.residency(ofConstant: name) : extraResidency
    }
}
