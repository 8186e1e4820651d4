import Foundation
import Kiln
import Testing

/// Requests that cannot fit the device and absurd values are refused before any work: a clear
/// error naming the setting (and, for memory, the bytes needed and available), exit 2, at once,
/// with nothing allocated.
@Suite(.serialized) struct RequestLimitTests {
    static let prompt = "a small red star on a white background"

    @Test func aSizeBeyondTheDeviceIsRefusedBeforeAnyAllocation() throws {
        let backend = try VulkanBackend()
        let pipeline = try Pipelines.openDefault(backend: backend, dtype: .float16)
        var request = pipeline.defaults.request(.prompt(Self.prompt, negative: nil), seed: 1)
        request.width = 8192
        request.height = 8192
        let reserved = backend.device.allocator.reservedBytes(.deviceLocal)
        let uploaded = backend.uploadedConstantBytes
        for attempt in [{ try pipeline.check(request) }, { _ = try pipeline.generate(request) }] {
            do {
                try attempt()
                Issue.record("8192x8192 was accepted on \(backend.name)")
            } catch let error as PipelineError {
                guard case .insufficientMemory(let message) = error else { Issue.record("\(error)"); continue }
                #expect(error.isBadInput)
                #expect(message.contains("size 8192x8192") && message.contains("\(backend.device.info.maxMemoryAllocationSize) bytes"), "\(message)")
            }
        }
        #expect(backend.device.allocator.reservedBytes(.deviceLocal) == reserved)
        #expect(backend.uploadedConstantBytes == uploaded)
    }

    @Test func theCPUBackendRefusesWhatWouldExhaustTheMachine() throws {
        let pipeline = try Pipelines.openDefault(backend: CPUBackend(), dtype: .float32)
        var request = pipeline.defaults.request(.prompt(Self.prompt, negative: nil), seed: 1)
        request.width = 16384
        request.height = 16384
        #expect(throws: PipelineError.self) { try pipeline.check(request) }
    }

    @Test(arguments: [
        (["--width", "1000000000"], "each side must be at most 16384"),
        (["--steps", "1000000000"], "steps 1000000000"),
        (["--steps", "5000"], "more than the scheduler's 1000 training timesteps"),
        (["--batch-count", "1000000"], "1000000 images in one request"),
        (["--width", "8192", "--height", "8192"], "insufficient memory: size 8192x8192"),
        (["--width", "16384", "--height", "16384", "--backend", "cpu"], "insufficient memory: size 16384x16384"),
    ])
    func absurdValuesExitTwoAtOnce(_ arguments: [String], _ message: String) throws {
        let scratch = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("out.png")
        let start = Date()
        let run = try GenerateCommandTests.kiln(["generate", "--prompt", Self.prompt, "--quiet", "--output", output.path] + arguments)
        #expect(run.status == 2 && run.errors.contains(message), "\(arguments): exit \(run.status), \(run.errors)")
        // Refused before the text encoder ran: no kernel was compiled, no weight uploaded.
        #expect(Date().timeIntervalSince(start) < 30, "\(arguments) took \(Date().timeIntervalSince(start)) s")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    @Test func aSchedulerConfigWithAnAbsurdStepsOffsetIsRefused() throws {
        let scratch = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let model = scratch.appendingPathComponent("model")
        try FileManager.default.copyItem(at: try DefaultModel.requiredLocation(), to: model)
        let config = model.appendingPathComponent("scheduler/scheduler_config.json")
        // Edited as text: the file is JSON5 (`-Infinity`), as diffusers writes it.
        let text = try String(contentsOf: config, encoding: .utf8)
        #expect(text.contains(#""steps_offset": 1,"#))
        try text.replacingOccurrences(of: #""steps_offset": 1,"#, with: #""steps_offset": 500000,"#).write(to: config, atomically: true, encoding: .utf8)
        let output = scratch.appendingPathComponent("out.png")
        let run = try GenerateCommandTests.kiln(["generate", "--model", model.path, "--prompt", Self.prompt, "--quiet", "--output", output.path])
        #expect(run.status == 2 && run.errors.contains("steps_offset 500000 must be in 0..<1000"), "exit \(run.status), \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }
}
