@testable import KilnVulkan
import Kiln
import KilnVerification
import Testing

/// Each kernel's push-constant block is declared in GLSL and packed in Swift: this reflects the
/// compiled SPIR-V of every dispatch in the case table and checks names and offsets agree.
@Suite struct PushConstantLayoutTests {
    @Test(arguments: OperationCases.standard)
    func swiftPackingMatchesGLSL(_ testCase: OperationCase) throws {
        let backend = try TestDevice.vulkan()
        let graph = Graph()
        let (outputs, _) = try testCase.build(graph)
        for id in graph.dependencies(of: outputs) {
            let node = graph.nodes[id]
            let argument = { (node: Node) in TensorArgument(address: 0, shape: node.shape, dtype: node.dtype) }
            let context = KernelContext(node: node, inputs: node.inputs.map { argument(graph.nodes[$0]) },
                                        output: argument(node), device: backend.device.info)
            for dispatch in try KernelTable.dispatches(context) {
                let words = try ShaderCompiler.shared.spirv(file: dispatch.file, defines: dispatch.defines)
                let reflected = try #require(SPIRVReflection.pushConstantMembers(words), "\(dispatch.file): no push-constant block")
                let packed = dispatch.pushConstants.fields.map { "\($0.name)@\($0.offset)" }
                #expect(reflected.map { "\($0.name)@\($0.offset)" } == packed, "\(dispatch.file) \(dispatch.key.defines)")
            }
        }
    }
}

/// Just enough SPIR-V parsing to list the push-constant block's members.
enum SPIRVReflection {
    static func pushConstantMembers(_ words: [UInt32]) -> [(name: String, offset: Int)]? {
        var memberNames: [UInt32: [UInt32: String]] = [:]
        var memberOffsets: [UInt32: [UInt32: Int]] = [:]
        var pointerTargets: [UInt32: UInt32] = [:]
        var pushConstantPointer: UInt32?
        var index = 5
        while index < words.count {
            let length = Int(words[index] >> 16), opcode = words[index] & 0xFFFF
            guard length > 0, index + length <= words.count else { return nil }
            let operands = Array(words[(index + 1)..<(index + length)])
            switch opcode {
            case 6:  // OpMemberName type member "name"
                memberNames[operands[0], default: [:]][operands[1]] = decodeString(Array(operands[2...]))
            case 72 where operands[2] == 35:  // OpMemberDecorate type member Offset value
                memberOffsets[operands[0], default: [:]][operands[1]] = Int(operands[3])
            case 32 where operands[1] == 9:  // OpTypePointer id PushConstant type
                pointerTargets[operands[0]] = operands[2]
            case 59 where operands[2] == 9:  // OpVariable type id PushConstant
                pushConstantPointer = operands[0]
            default:
                break
            }
            index += length
        }
        guard let pointer = pushConstantPointer, let block = pointerTargets[pointer], let offsets = memberOffsets[block] else { return nil }
        return offsets.keys.sorted().map { (memberNames[block]?[$0] ?? "?", offsets[$0] ?? -1) }
    }

    private static func decodeString(_ words: [UInt32]) -> String {
        var bytes: [UInt8] = []
        for word in words {
            for shift in stride(from: 0, to: 32, by: 8) {
                let byte = UInt8(truncatingIfNeeded: word >> UInt32(shift))
                if byte == 0 { return String(decoding: bytes, as: UTF8.self) }
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
