import Foundation
import Kiln
import Testing

/// The op-case table (`kiln verify`) and a whole generation with the validation layer's
/// synchronization checks on (`KILN_VALIDATE=sync`): no message at all. Each runs in a process of
/// its own, since the layer is chosen when the process's Vulkan instance is made.
///
/// What the layer can see: copies and barriers of the command buffers (uploads, readbacks). Kernels
/// reach tensors through buffer device addresses, which it does not track, so hazards between
/// dispatches are Kiln's own planner's to avoid (`VulkanPreparedGraph.record`); with the readback
/// copy doubled without a barrier, the layer reported SYNC-HAZARD-WRITE-AFTER-WRITE (RELIABILITY.md).
@Suite(.serialized) struct SynchronizationValidationTests {
    @Test func theOperationCasesReportNothing() throws {
        let run = try GenerateCommandTests.kiln(["verify"], environment: ["KILN_VALIDATE": "sync"])
        #expect(run.status == 0, "exit \(run.status): \(run.errors.suffix(2000))")
        #expect(run.errors.contains("validation messages: 0"), "\(run.errors.suffix(2000))")
        #expect(run.output.contains(" passed, 0 failed"), "\(run.output.suffix(500))")
    }

    @Test func aGenerationReportsNothing() throws {
        let scratch = try GenerateCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("validated.png")
        let run = try GenerateCommandTests.kiln(
            ["generate", "--prompt", "a large purple cross on a white background, top left", "--steps", "3", "--quiet", "--output", output.path],
            environment: ["KILN_VALIDATE": "sync"])
        #expect(run.status == 0 && run.errors.contains("validation messages: 0"), "exit \(run.status): \(run.errors.suffix(2000))")
        #expect(FileManager.default.fileExists(atPath: output.path))
    }

    @Test func anUnknownValidationModeIsRefused() throws {
        let run = try GenerateCommandTests.kiln(["generate", "--prompt", "x", "--output", "/tmp/never.png"], environment: ["KILN_VALIDATE": "everything"])
        #expect(run.status != 0 && run.errors.contains("KILN_VALIDATE must be 1 or sync"), "\(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never.png"))
    }
}
