import KilnGraph

/// Maps each graph op to its kernel dispatches on a device: the Vulkan backend's whole op list.
/// One file per kernel family holds the details.
enum KernelTable {
    static func dispatches(_ context: KernelContext) throws -> [Dispatch] {
        switch context.node.operation {
        case .input, .constant, .reshape:
            return []
        case .matmul(let transposeA, let transposeB, let hasBias, let hasAddend):
            return [MatmulKernel.dispatch(context, transposeA: transposeA, transposeB: transposeB, hasBias: hasBias, hasAddend: hasAddend)]
        case .conv2d(let parameters):
            return [ConvolutionKernel.dispatch(context, parameters)]
        case .attention(let scale, let causal, let hasBias, let heads):
            return [AttentionKernel.dispatch(context, scale: scale, causal: causal, hasBias: hasBias, tokenMajorHeads: heads)]
        case .groupNorm(let groups, let epsilon, let silu):
            return [NormalizationKernels.groupNorm(context, groups: groups, epsilon: epsilon, silu: silu)]
        case .layerNorm(let epsilon, let hasWeight, let hasBias):
            return [NormalizationKernels.rowNorm(context, kind: "LAYER_NORM", epsilon: epsilon, hasWeight: hasWeight, hasBias: hasBias)]
        case .rmsNorm(let epsilon, let hasWeight):
            return [NormalizationKernels.rowNorm(context, kind: "RMS_NORM", epsilon: epsilon, hasWeight: hasWeight, hasBias: false)]
        case .softmax:
            return [NormalizationKernels.rowNorm(context, kind: "SOFTMAX", epsilon: 0, hasWeight: false, hasBias: false)]
        case .binary(let op):
            return [ElementwiseKernels.binary(context, op)]
        case .unary(let op):
            return [ElementwiseKernels.unary(context, function: op)]
        case .scale(let factor):
            return [ElementwiseKernels.unary(context, function: nil, affine: .scale(factor))]
        case .clamp(let lower, let upper):
            return [ElementwiseKernels.unary(context, function: nil, affine: .clamp(lower, upper))]
        case .geglu:
            return [ElementwiseKernels.geglu(context)]
        case .winogradInput(let upsampled):
            return [WinogradKernels.input(context, upsampled: upsampled)]
        case .winogradWeight:
            return [WinogradKernels.weight(context)]
        case .winogradOutput(let parameters):
            return [WinogradKernels.output(context, parameters)]
        case .guidedStep(let hasNoise):
            return [ElementwiseKernels.guidedStep(context, hasNoise: hasNoise)]
        case .modulate:
            return [ElementwiseKernels.modulate(context)]
        case .rope:
            return [ElementwiseKernels.rope(context)]
        case .timestepEmbedding(let parameters):
            return [ElementwiseKernels.timestepEmbedding(context, parameters)]
        case .cast:
            return [ElementwiseKernels.cast(context)]
        case .upsampleNearest2x:
            return [MovementKernels.upsample(context)]
        case .concat(let axis):
            return MovementKernels.concat(context, axis: axis)
        case .slice(let axis, let start, _):
            return [MovementKernels.slice(context, axis: axis, start: start)]
        case .permute(let permutation):
            return [MovementKernels.permute(context, permutation)]
        case .embedding:
            return [MovementKernels.embedding(context)]
        }
    }

}

extension KernelContext {
    /// Workgroup size for simple 1-D kernels: small on CPU devices, where a workgroup is a SIMD loop.
    var elementwiseWorkgroup: Int { prefersRegisterBlocking ? 64 : 256 }

    /// A grid-stride 1-D dispatch over `count` items.
    func linearDispatch(_ file: String, defines: [(String, String)], pushConstants: PushConstants, count: Int) -> Dispatch {
        let size = elementwiseWorkgroup
        // CPU devices run a few threads: more groups than ~1024 only add scheduling overhead.
        let groups = Dispatch.linearGroups(count: count, workgroupSize: size, cap: prefersRegisterBlocking ? 1024 : 65535)
        return Dispatch(file: file, defines: defines, workgroupSize: [UInt32(size)], pushConstants: pushConstants, groups: groups)
    }

    func argument(_ index: Int) -> TensorArgument { inputs[index] }
}
