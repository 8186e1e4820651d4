import Foundation
import Kiln
import Testing

/// A lost device and exhausted device memory, injected where the driver would report them
/// (`InjectedFault`, `KILN_FAULT`): every front end fails that one piece of work with an error
/// naming the device and the stage, never aborts, and goes on with a device opened again.
@Suite(.serialized) struct FaultInjectionTests {
    static let prompt = "a small red star on a white background"

    /// The built-in model on a Vulkan device of the test's own, so a fault armed on it reaches
    /// no other test.
    static func defaultPipeline() throws -> (any DiffusionPipeline, VulkanBackend) {
        let backend = try VulkanBackend()
        return (try Pipelines.openDefault(backend: backend, dtype: .float16), backend)
    }

    static func request(_ pipeline: any DiffusionPipeline) -> GenerationRequest {
        var request = pipeline.defaults.request(.prompt(prompt, negative: nil), seed: 3)
        request.steps = 3
        return request
    }

    @Test func aLostDeviceFailsTheRunAndEveryLaterOneUntilReopened() throws {
        let (pipeline, backend) = try Self.defaultPipeline()
        backend.device.injectFault(InjectedFault(.deviceLost, at: .run, ordinal: 3))
        #expect(throws: PipelineError.self) { _ = try pipeline.generate(Self.request(pipeline)) }
        do {
            _ = try pipeline.generate(Self.request(pipeline))
            Issue.record("a generation ran on a lost device")
        } catch let error as PipelineError {
            #expect(error.requiresReopening && !error.isBadInput, "\(error)")
            #expect("\(error)".contains(backend.device.info.name) && "\(error)".contains("open the device and the model again"), "\(error)")
        }
        #expect(backend.deviceFailure?.contains("injected device-lost@run:3") == true)
        let (fresh, _) = try Self.defaultPipeline()
        let result = try fresh.generate(Self.request(fresh))
        #expect(result.imageCount == 1)
    }

    @Test func theLostRunNamesTheDeviceAndTheStage() throws {
        let (pipeline, backend) = try Self.defaultPipeline()
        // The text encoder's run is the first: the third is a denoising step.
        backend.device.injectFault(InjectedFault(.deviceLost, at: .run, ordinal: 3))
        do {
            _ = try pipeline.generate(Self.request(pipeline))
            Issue.record("the run finished")
        } catch let error as PipelineError {
            guard case .deviceLost(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("'\(backend.device.info.name)' was lost") && message.hasSuffix("while denoising"), "\(message)")
        }
    }

    @Test func outOfDeviceMemoryFailsOneRequestAndTheNextOneWorks() throws {
        let (pipeline, backend) = try Self.defaultPipeline()
        backend.device.injectFault(InjectedFault(.outOfDeviceMemory, at: .allocation, ordinal: 1))
        do {
            _ = try pipeline.generate(Self.request(pipeline))
            Issue.record("the run finished")
        } catch let error as PipelineError {
            #expect(!error.requiresReopening && !error.isBadInput)
            #expect("\(error)".contains("VK_ERROR_OUT_OF_DEVICE_MEMORY") && "\(error)".contains("while encoding the prompt on \(backend.name)"), "\(error)")
        }
        #expect(backend.deviceFailure == nil)
        #expect(try pipeline.generate(Self.request(pipeline)).imageCount == 1)
    }

    @Test(arguments: ["device-lost@run:3", "out-of-device-memory@allocation:2"])
    func generateExitsOneNamingTheDeviceAndWritesNothing(_ fault: String) throws {
        let scratch = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("out.png")
        let run = try GenerateCommandTests.kiln(
            ["generate", "--prompt", Self.prompt, "--steps", "3", "--quiet", "--output", output.path], environment: ["KILN_FAULT": fault])
        #expect(run.status == 1, "\(fault): exit \(run.status), \(run.errors)")
        #expect(run.errors.contains("llvmpipe") || run.errors.contains("vulkan:"), "\(run.errors)")
        #expect(run.errors.contains(fault.hasPrefix("device") ? "device lost: " : "VK_ERROR_OUT_OF_DEVICE_MEMORY"), "\(run.errors)")
        #expect(run.errors.contains("while "), "no stage named: \(run.errors)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    @Test func aMalformedFaultIsRefused() throws {
        let run = try GenerateCommandTests.kiln(["generate", "--prompt", "x", "--output", "/tmp/never.png"], environment: ["KILN_FAULT": "device-lost@3"])
        #expect(run.status == 2 && run.errors.contains("KILN_FAULT 'device-lost@3'"), "\(run.errors)")
    }

    /// The lost job is recorded failed-retryable, the worker opens the device and the model
    /// again, and every job of the manifest is rendered.
    @Test func renderReopensTheDeviceAndFinishesEveryJob() throws {
        let folder = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try RenderCommandTests.write(
            [#"{"id": "shapes", "prompt": "a large blue circle on a yellow background", "seed": {"range": [0, 3]}, "steps": 3}"#], to: folder)
        let out = folder.appendingPathComponent("out")
        // A job takes about five runs (text encoder, three steps, VAE): run 6 falls in the second.
        let run = try RenderCommandTests.render([manifest.path, "--out", out.path, "--log", "jsonl"], environment: ["KILN_FAULT": "device-lost@run:6"])
        #expect(run.status == 0, "\(run.errors)")
        let pngs = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".png") }
        #expect(pngs.sorted() == (0...3).map { "shapes-\($0).png" })
        let ledger = try FileManager.default.contentsOfDirectory(at: out, includingPropertiesForKeys: nil).first { $0.pathExtension == "jsonl" }
        let records = try String(contentsOf: try #require(ledger), encoding: .utf8).split(separator: "\n")
        let failures = records.filter { $0.contains(#""event":"failed""#) }
        #expect(failures.count == 1 && failures[0].contains(#""retryable":true"#) && failures[0].contains("device lost"), "\(failures)")
        #expect(records.filter { $0.contains(#""event":"done""#) }.count == 4)
    }
}
