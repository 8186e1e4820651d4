// Folds residual adds into the conv2d or matmul that produces one of their operands, so the sum is
// formed in the producing kernel's registers instead of a second pass over memory.

extension Graph {
    /// The part of this graph that `outputs` need, with each `add` folded into the conv2d or matmul
    /// that produces one operand (as that op's addend) when nothing else reads the product:
    ///
    /// - `add(conv2d(x) [N, O, H, W], r)` with `r` `[N, O, H, W]` (a residual) or `[N, O, 1, 1]`
    ///   (a per-image channel bias, the U-Net's time embedding) becomes `conv2d(x, addend: r)`;
    /// - `add(reshape(matmul(a, b)), r)` or `add(matmul(a, b), r)` with `r` of the add's shape (a
    ///   transformer's residual after `linear`) becomes `reshape(matmul(a, b, addend: reshape(r)))`.
    ///
    /// Returns the new graph and `outputs` in it. The values agree with the original up to one
    /// rounding to the storage type fewer (the sum is formed in f32); the CPU backend runs either.
    public func fusingAddends(outputs: [Tensor]) -> (graph: Graph, outputs: [Tensor]) {
        let readOnceByAdd = readOnce(outputs: outputs)
        var fusions: [Int: AddendFusion] = [:]
        for id in dependencies(of: outputs) {
            guard case .binary(.add) = nodes[id].operation, let fusion = addendFusion(at: id, readOnce: readOnceByAdd) else { continue }
            fusions[id] = fusion
        }
        return rewritten(outputs: outputs) { node, mapped, fused in
            guard let fusion = fusions[node.id], var addend = mapped(fusion.addend) else { return nil }
            let producer = nodes[fusion.producer]
            if addend.shape.elementCount == producer.shape.elementCount, addend.shape != producer.shape {
                addend = fused.append(.reshape(producer.shape), [addend], shape: producer.shape, dtype: addend.dtype)
            }
            let result = fused.append(
                fusion.operation, producer.inputs.compactMap(mapped) + [addend], shape: producer.shape, dtype: producer.dtype)
            return fusion.view == nil ? result : fused.append(.reshape(node.shape), [result], shape: node.shape, dtype: node.dtype)
        }
    }

    /// How add node `id` folds into a producer of one operand, trying the first operand first.
    private func addendFusion(at id: Int, readOnce: (Int) -> Bool) -> AddendFusion? {
        let add = nodes[id]
        for (operand, other) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] {
            guard readOnce(operand), nodes[operand].shape == add.shape, nodes[other].dtype == add.dtype else { continue }
            var producer = operand, view: Int?
            if case .reshape = nodes[operand].operation, let source = nodes[operand].inputs.first, readOnce(source) {
                (producer, view) = (source, operand)
            }
            let product = nodes[producer], otherShape = nodes[other].shape
            switch product.operation {
            case .conv2d(var parameters) where !parameters.hasAddend && view == nil:
                let channelBias: Shape = [product.shape[0], product.shape[1], 1, 1]
                guard otherShape == product.shape || otherShape == channelBias else { continue }
                parameters.hasAddend = true
                return AddendFusion(producer: producer, view: view, addend: other, operation: .conv2d(parameters))
            case .matmul(let transposeA, let transposeB, let hasBias, false) where otherShape == add.shape:
                return AddendFusion(producer: producer, view: view, addend: other,
                                    operation: .matmul(transposeA: transposeA, transposeB: transposeB, hasBias: hasBias, hasAddend: true))
            default:
                continue
            }
        }
        return nil
    }
}

/// One add folded into its producer: the add becomes `operation` with the producer's inputs and
/// the addend; the producer (and the reshape between them) are left unread.
private struct AddendFusion {
    let producer: Int
    let view: Int?
    let addend: Int
    let operation: Operation
}
