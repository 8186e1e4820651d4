import KilnGraph

/// One adapted layer of a LoRA file: the factors its weight change is stored as, and the alpha
/// that scales it. `delta` multiplies the factors out in f32.
///
/// - Low rank (LoRA, LoCon; kohya's `lora_up`/`lora_down`, PEFT's `lora_B`/`lora_A`):
///   `ΔW = up [O, r] · down [r, I·kh·kw]`, with LyCORIS's Tucker core `lora_mid [r, r, kh, kw]`
///   between them when present (`ΔW[o, c, h, w] = Σ up[o, i] · mid[i, j, h, w] · down[j, c]`).
///   Hu et al., https://arxiv.org/abs/2106.09685.
/// - LoHa (`hada_w1_a`, `hada_w1_b`, `hada_w2_a`, `hada_w2_b`): `ΔW = (w1a · w1b) ⊙ (w2a · w2b)`,
///   rank `w1b`'s rows. Hyeon-Woo et al., https://arxiv.org/abs/2108.06098.
/// - LoKr (`lokr_w1` or `lokr_w1_a · lokr_w1_b`, `lokr_w2` or `lokr_w2_a · lokr_w2_b`):
///   `ΔW = w1 ⊗ w2` (Kronecker product); its rank is that of the factored part (`w2`'s when
///   both are), and a LoKr with neither factored has no rank: its scale is 1, as kohya's and
///   LyCORIS's loaders take it. Yeh et al., https://arxiv.org/abs/2309.14859.
///
/// Scale: `alpha / rank` (`alpha / sqrt(rank)` with PEFT's rank-stabilised `use_rslora`), 1 when
/// the file gives no alpha (alpha = rank). A request's multiplier comes on top.
public struct LoRAModule: Sendable, Equatable {
    /// A Kronecker factor: a whole matrix, or a product of two.
    public enum KroneckerFactor: Sendable, Equatable {
        case whole(String)
        case factored(a: String, b: String)
    }

    /// Where the factors are, by tensor key in the file.
    public enum Factors: Sendable, Equatable {
        case lowRank(up: String, down: String, mid: String?)
        case hadamard(w1a: String, w1b: String, w2a: String, w2b: String)
        case kronecker(w1: KroneckerFactor, w2: KroneckerFactor)
    }

    /// The module's name as the file writes it, without the factor suffix
    /// (`lora_unet_down_blocks_0_attentions_0_proj_in`, `unet.down_blocks.0.attentions.0.proj_in`).
    public let name: String
    public let factors: Factors
    /// The file's alpha for this module; nil when it gives none.
    public let alpha: Float?
    /// PEFT's `use_rslora`: the scale is `alpha / sqrt(rank)`.
    public let rankStabilized: Bool

    public init(name: String, factors: Factors, alpha: Float?, rankStabilized: Bool = false) {
        self.name = name
        self.factors = factors
        self.alpha = alpha
        self.rankStabilized = rankStabilized
    }

    /// The tensor keys of the factors.
    public var factorKeys: [String] {
        switch factors {
        case .lowRank(let up, let down, let mid): [up, down] + (mid.map { [$0] } ?? [])
        case .hadamard(let w1a, let w1b, let w2a, let w2b): [w1a, w1b, w2a, w2b]
        case .kronecker(let w1, let w2):
            [w1, w2].flatMap { factor -> [String] in
                switch factor {
                case .whole(let key): [key]
                case .factored(let a, let b): [a, b]
                }
            }
        }
    }

    /// The change's shape `[O, I]` or `[O, I, kh, kw]`, read from the factors' shapes alone.
    public func deltaShape(in file: TensorSource) throws -> Shape {
        func shape(_ key: String) throws -> Shape {
            guard let found = file.shape(of: key) else { throw WeightError.missing(origin: file.origin, name: key, expected: nil) }
            return found
        }
        switch factors {
        case .lowRank(let up, let down, let mid):
            let (upShape, downShape) = (try shape(up), try shape(down))
            let kernel = try mid.map { try Array(shape($0).dimensions.dropFirst(2)) } ?? Array(downShape.dimensions.dropFirst(2))
            return Shape([upShape[0], downShape[1]] + kernel)
        case .hadamard(let w1a, let w1b, _, _):
            let (a, b) = (try shape(w1a), try shape(w1b))
            return [a[0], b.dimensions.dropFirst().reduce(1, *)]
        case .kronecker(let w1, let w2):
            func factorShape(_ factor: KroneckerFactor) throws -> [Int] {
                switch factor {
                case .whole(let key): return try shape(key).dimensions
                case .factored(let a, let b): return [try shape(a)[0]] + Array(try shape(b).dimensions.dropFirst())
                }
            }
            let (first, second) = (try factorShape(w1), try factorShape(w2))
            return Shape([first[0] * second[0], first[1] * second[1]] + second.dropFirst(2))
        }
    }

    /// `ΔW` times `alpha / rank`, in f32, shaped as `deltaShape`. Factors are read from `file`.
    public func delta(in file: TensorSource) throws -> HostTensor {
        let shape = try deltaShape(in: file)
        func load(_ key: String) throws -> HostTensor { try file.load(key) }
        var values: [Float]
        var rank: Int?
        switch factors {
        case .lowRank(let upKey, let downKey, let midKey):
            let (up, down) = (try load(upKey), try load(downKey))
            let r = down.shape[0]
            rank = r
            guard up.shape.elementCount == up.shape[0] * r else {
                throw LoRAError.badFactors(module: name, "lora_up \(up.shape) does not take lora_down's \(r) rows")
            }
            if let midKey {
                let mid = try load(midKey)
                guard mid.shape.rank == 4, mid.shape[0] == r, mid.shape[1] == r else {
                    throw LoRAError.badFactors(module: name, "lora_mid \(mid.shape) is not [\(r), \(r), kh, kw]")
                }
                values = Self.tucker(up: up.scalars, mid: mid.scalars, down: down.scalars, outputs: up.shape[0], rank: r,
                                     inputs: down.shape.elementCount / r, kernel: mid.shape[2] * mid.shape[3])
            } else {
                values = Self.product(up.scalars, rows: up.shape[0], inner: r, down.scalars, columns: down.shape.elementCount / r)
            }
        case .hadamard(let w1aKey, let w1bKey, let w2aKey, let w2bKey):
            let (w1a, w1b, w2a, w2b) = (try load(w1aKey), try load(w1bKey), try load(w2aKey), try load(w2bKey))
            let r = w1b.shape[0]
            rank = r
            let columns = w1b.shape.elementCount / r
            guard w1a.shape.elementCount == w1a.shape[0] * r, w2b.shape.elementCount / w2b.shape[0] == columns, w2a.shape[0] == w1a.shape[0],
                  w2a.shape.elementCount == w2a.shape[0] * w2b.shape[0] else {
                throw LoRAError.badFactors(module: name, "hada factors \(w1a.shape) \(w1b.shape) \(w2a.shape) \(w2b.shape) do not agree")
            }
            let first = Self.product(w1a.scalars, rows: w1a.shape[0], inner: r, w1b.scalars, columns: columns)
            let second = Self.product(w2a.scalars, rows: w2a.shape[0], inner: w2b.shape[0], w2b.scalars, columns: columns)
            values = zip(first, second).map { $0 * $1 }
        case .kronecker(let w1Factor, let w2Factor):
            func build(_ factor: KroneckerFactor) throws -> (values: [Float], dimensions: [Int], rank: Int?) {
                switch factor {
                case .whole(let key):
                    let tensor = try load(key)
                    return (tensor.scalars, tensor.shape.dimensions, nil)
                case .factored(let aKey, let bKey):
                    let (a, b) = (try load(aKey), try load(bKey))
                    let inner = b.shape[0]
                    guard a.shape.elementCount == a.shape[0] * inner else {
                        throw LoRAError.badFactors(module: name, "lokr factors \(a.shape) and \(b.shape) do not agree")
                    }
                    let dimensions = [a.shape[0]] + Array(b.shape.dimensions.dropFirst())
                    return (Self.product(a.scalars, rows: a.shape[0], inner: inner, b.scalars, columns: b.shape.elementCount / inner), dimensions, inner)
                }
            }
            let (w1, w2) = (try build(w1Factor), try build(w2Factor))
            guard w1.dimensions.count == 2 else { throw LoRAError.badFactors(module: name, "lokr_w1 must be a matrix, got \(w1.dimensions)") }
            rank = w2.rank ?? w1.rank
            values = Self.kronecker(w1.values, rows: w1.dimensions[0], columns: w1.dimensions[1], w2.values, dimensions: w2.dimensions)
        }
        let scale = Self.scale(alpha: alpha, rank: rank, rankStabilized: rankStabilized)
        if scale != 1 { for index in values.indices { values[index] *= scale } }
        return HostTensor(shape: shape, scalars: values)
    }

    /// `alpha / rank` (or `/ sqrt(rank)`); 1 without an alpha or a rank.
    public static func scale(alpha: Float?, rank: Int?, rankStabilized: Bool) -> Float {
        guard let alpha, let rank, rank > 0 else { return 1 }
        return rankStabilized ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
    }

    /// `a [rows, inner] · b [inner, columns]`, row-major, accumulated in f32 in k order.
    static func product(_ a: [Float], rows: Int, inner: Int, _ b: [Float], columns: Int) -> [Float] {
        var result = [Float](repeating: 0, count: rows * columns)
        result.withUnsafeMutableBufferPointer { output in
            a.withUnsafeBufferPointer { left in
                b.withUnsafeBufferPointer { right in
                    guard let target = output.baseAddress, let source = right.baseAddress else { return }
                    for row in 0..<rows {
                        for k in 0..<inner {
                            let factor = left[row * inner + k]
                            if factor == 0 { continue }
                            for column in 0..<columns { target[row * columns + column] += factor * source[k * columns + column] }
                        }
                    }
                }
            }
        }
        return result
    }

    /// `ΔW[o, c, h, w] = Σ_i Σ_j up[o, i] · mid[i, j, h, w] · down[j, c]`.
    static func tucker(up: [Float], mid: [Float], down: [Float], outputs: Int, rank: Int, inputs: Int, kernel: Int) -> [Float] {
        // (up · mid) [O, r, kernel] first, then each kernel position against down [r, I].
        let upMid = product(up, rows: outputs, inner: rank, mid, columns: rank * kernel)     // [O, (j, kernel)]
        var result = [Float](repeating: 0, count: outputs * inputs * kernel)
        for o in 0..<outputs {
            for j in 0..<rank {
                for position in 0..<kernel {
                    let factor = upMid[(o * rank + j) * kernel + position]
                    if factor == 0 { continue }
                    for c in 0..<inputs { result[(o * inputs + c) * kernel + position] += factor * down[j * inputs + c] }
                }
            }
        }
        return result
    }

    /// `torch.kron(w1 [a, b], w2 [p, q, ...])` -> `[a·p, b·q, ...]` (w1 read as `[a, b, 1, ...]`).
    static func kronecker(_ w1: [Float], rows: Int, columns: Int, _ w2: [Float], dimensions: [Int]) -> [Float] {
        let (p, q) = (dimensions[0], dimensions[1])
        let trailing = dimensions.dropFirst(2).reduce(1, *)
        let width = columns * q * trailing
        var result = [Float](repeating: 0, count: rows * p * width)
        for i in 0..<rows {
            for j in 0..<columns {
                let factor = w1[i * columns + j]
                for k in 0..<p {
                    for l in 0..<q {
                        let source = (k * q + l) * trailing
                        let target = (i * p + k) * width + (j * q + l) * trailing
                        for t in 0..<trailing { result[target + t] = factor * w2[source + t] }
                    }
                }
            }
        }
        return result
    }
}

/// A LoRA file Kiln cannot apply as asked, naming the file and what is wrong.
public enum LoRAError: Error, CustomStringConvertible, Equatable {
    /// Keys that are no LoRA factor Kiln reads (DoRA scales, bias changes, unknown suffixes).
    case unsupportedKeys(file: String, keys: [String])
    /// Modules whose target the model lacks: applying the rest would be a silent partial apply.
    case unmappedModules(file: String, modules: [String])
    case badFactors(module: String, String)
    /// A module whose change does not fit the weight it names.
    case wrongShape(file: String, module: String, target: String, delta: Shape, weight: Shape)
    case unreadable(file: String, String)

    public var description: String {
        func list(_ items: [String]) -> String {
            items.prefix(12).joined(separator: ", ") + (items.count > 12 ? ", ... (\(items.count) in all)" : "")
        }
        switch self {
        case .unsupportedKeys(let file, let keys):
            return "\(file): \(keys.count) key(s) are not LoRA, LoCon, LoHa or LoKr factors Kiln applies: \(list(keys))"
        case .unmappedModules(let file, let modules):
            return "\(file): \(modules.count) module(s) do not map onto this model (a LoRA for another model family or architecture?): \(list(modules))"
        case .badFactors(let module, let message): return "LoRA module \(module): \(message)"
        case .wrongShape(let file, let module, let target, let delta, let weight):
            return "\(file): module \(module) changes \(target) by \(delta), but that weight is \(weight)"
        case .unreadable(let file, let message): return "\(file): \(message)"
        }
    }
}
