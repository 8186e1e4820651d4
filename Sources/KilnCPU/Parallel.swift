import Foundation

/// Fills `count` f32 outputs by running `body(chunk, output)` for `chunks` independent chunks in
/// parallel; each chunk must write only its own part of the output.
func parallelFill(count: Int, chunks: Int, _ body: @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        buffer.initialize(repeating: 0)
        nonisolated(unsafe) let output = buffer
        if chunks == 1 || count < 4096 {
            for chunk in 0..<chunks { body(chunk, output) }
        } else {
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in body(chunk, output) }
        }
        initialized = count
    }
}
