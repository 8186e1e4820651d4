import CKiln
import Foundation
import XCTest

@testable import KilnC
@testable import Kiln

/// The C boundary without a model: struct versions, request translation (zero fields take the
/// model's defaults, as `kiln generate`'s omitted options do), status mapping and messages.
final class CInterfaceTests: XCTestCase {
    private let defaults = GenerationDefaults(
        width: 512, height: 768, steps: 30, guidanceScale: 7.5, sampler: "pndm", imageToImageStrength: 0.8, inpaintingStrength: 1)

    private func initialisedRequest() -> kiln_request {
        var request = kiln_request()
        kiln_request_init_sized(&request, MemoryLayout<kiln_request>.size)
        return request
    }

    func testInitialisationZeroesTheStructAndSetsItsSize() {
        var request = kiln_request()
        request.width = 99
        kiln_request_init_sized(&request, MemoryLayout<kiln_request>.size)
        XCTAssertEqual(request.struct_size, MemoryLayout<kiln_request>.size)
        XCTAssertEqual(request.width, 0)
        var options = kiln_open_options()
        kiln_open_options_init_sized(&options, MemoryLayout<kiln_open_options>.size)
        XCTAssertEqual(options.struct_size, MemoryLayout<kiln_open_options>.size)
        XCTAssertNil(options.backend)
    }

    func testAZeroRequestTakesEveryDefault() throws {
        try "a red car".withCString { prompt in
            var settings = initialisedRequest()
            settings.prompt = prompt
            settings.seed = 42
            let request = try RequestTranslation.request(from: settings, defaults: defaults)
            XCTAssertEqual(request, defaults.request(.prompt("a red car", negative: nil), seed: 42))
            XCTAssertEqual(request.batchCount, 1)
        }
    }

    func testSetFieldsOverrideTheDefaults() throws {
        try ["a boat", "", "euler_a", "karras"].withCStrings { strings in
            var settings = initialisedRequest()
            settings.prompt = strings[0]
            settings.negative_prompt = strings[1]
            settings.sampler = strings[2]
            settings.scheduler = strings[3]
            settings.width = 256
            settings.steps = 4
            settings.cfg_scale = 1
            settings.batch_count = 3
            settings.guidance_rescale = 0.5
            let request = try RequestTranslation.request(from: settings, defaults: defaults)
            XCTAssertEqual(request.conditioning, .prompt("a boat", negative: ""))
            XCTAssertEqual([request.width, request.height, request.steps, request.batchCount], [256, 768, 4, 3])
            XCTAssertEqual(request.guidanceScale, 1)
            XCTAssertEqual(request.sampler, .eulerAncestral)
            XCTAssertEqual(request.sigmaSpacing, .karras)
            XCTAssertEqual(request.options.guidanceRescale, 0.5)
        }
    }

    func testClassLabelsAndTheirMistakes() throws {
        let labels: [Int32] = [207, 360]
        try labels.withUnsafeBufferPointer { buffer in
            var settings = initialisedRequest()
            settings.class_labels = buffer.baseAddress
            settings.class_label_count = 2
            XCTAssertEqual(try RequestTranslation.request(from: settings, defaults: defaults).conditioning, .classLabels([207, 360]))
            settings.class_labels = nil
            XCTAssertThrowsError(try RequestTranslation.request(from: settings, defaults: defaults)) { error in
                XCTAssertTrue("\(error)".contains("class_labels is NULL"))
            }
        }
    }

    func testUnknownNamesAreBadInput() throws {
        try "warp".withCString { name in
            var settings = initialisedRequest()
            settings.prompt = name
            settings.sampler = name
            XCTAssertThrowsError(try RequestTranslation.request(from: settings, defaults: defaults)) { error in
                XCTAssertEqual(Boundary.status(of: error), KILN_BAD_INPUT)
                XCTAssertTrue("\(error)".contains("sampler 'warp'"))
            }
        }
    }

    func testStructSizes() throws {
        var request = initialisedRequest()
        request.steps = 5
        XCTAssertEqual(try RequestTranslation.read(&request).steps, 5)

        // An older header's struct: read up to its end, the rest zero.
        request.struct_size = RequestTranslation.olderSizes[0]
        request.strength = 0.5
        let older = try RequestTranslation.read(&request)
        XCTAssertEqual(older.steps, 5)
        XCTAssertEqual(older.strength, 0)

        // Sizes no header had, and an uninitialised struct.
        for size in [0, 12, RequestTranslation.olderSizes[0] + 4] {
            request.struct_size = size
            XCTAssertThrowsError(try RequestTranslation.read(&request), "size \(size)")
        }

        // A newer header's struct: fine while the unknown tail is zero.
        let known = MemoryLayout<kiln_request>.size
        let newer = UnsafeMutableRawPointer.allocate(byteCount: known + 16, alignment: 16)
        defer { newer.deallocate() }
        kiln_request_init_sized(newer.assumingMemoryBound(to: kiln_request.self), known + 16)
        XCTAssertEqual(newer.load(as: Int.self), known + 16)
        XCTAssertNoThrow(try RequestTranslation.read(newer.assumingMemoryBound(to: kiln_request.self)))
        newer.storeBytes(of: 1, toByteOffset: known + 8, as: UInt8.self)
        XCTAssertThrowsError(try RequestTranslation.read(newer.assumingMemoryBound(to: kiln_request.self))) { error in
            XCTAssertTrue("\(error)".contains("newer kiln.h"))
        }
    }

    func testStatusesOfErrors() {
        XCTAssertEqual(Boundary.status(of: PipelineError.cancelled), KILN_CANCELLED)
        XCTAssertEqual(Boundary.status(of: PipelineError.invalidRequest("x")), KILN_BAD_INPUT)
        XCTAssertEqual(Boundary.status(of: PipelineError.failed("x")), KILN_FAILED)
        XCTAssertEqual(Boundary.status(of: CocoaError(.fileReadUnknown)), KILN_FAILED)
        XCTAssertEqual(String(cString: kiln_status_name(KILN_BAD_INPUT)), "KILN_BAD_INPUT")
        XCTAssertEqual(String(cString: kiln_version()), KilnVersion.string)
        XCTAssertEqual(kiln_api_version(), 1)
    }

    func testMessagesArePerThreadAndClearedBySuccess() {
        let messages = ThreadMessages()
        _ = Boundary.call("kiln_test", messages: messages) { throw EmbeddingError("broken") }
        XCTAssertEqual(String(cString: messages.current()), "kiln_test: broken")
        let done = expectation(description: "other thread")
        let thread = Thread {
            XCTAssertEqual(String(cString: messages.current()), "")
            _ = Boundary.call("kiln_test", messages: messages) { throw EmbeddingError("its own") }
            XCTAssertEqual(String(cString: messages.current()), "kiln_test: its own")
            done.fulfill()
        }
        thread.start()
        wait(for: [done], timeout: 10)
        XCTAssertEqual(String(cString: messages.current()), "kiln_test: broken")
        XCTAssertEqual(Boundary.call("kiln_test", messages: messages) {}, KILN_OK)
        XCTAssertEqual(String(cString: messages.current()), "")
    }

    func testOpeningWithoutAPathOpensTheBuiltInModel() {
        var context: OpaquePointer?
        var options = kiln_open_options()
        kiln_open_options_init_sized(&options, MemoryLayout<kiln_open_options>.size)
        "cpu".withCString { backend in
            options.backend = backend
            XCTAssertEqual(kiln_open(nil, &options, &context), KILN_OK, String(cString: kiln_last_error(nil)))
        }
        XCTAssertNotNil(context)
        kiln_close(context)
    }

    /// A lost device fails that call with KILN_FAILED and a message naming it; the context opens
    /// the device and the model again, so the next call succeeds.
    func testALostDeviceFailsOneCallAndTheContextStaysUsable() throws {
        var context: OpaquePointer?
        var options = kiln_open_options()
        kiln_open_options_init_sized(&options, MemoryLayout<kiln_open_options>.size)
        XCTAssertEqual(kiln_open(nil, &options, &context), KILN_OK, String(cString: kiln_last_error(nil)))
        defer { kiln_close(context) }
        let embedded = try XCTUnwrap(EmbeddedContext.from(context))
        let vulkan = try XCTUnwrap(embedded.device.backend as? VulkanBackend)
        vulkan.device.injectFault(InjectedFault(.deviceLost, at: .run, ordinal: 2))
        try ["a small red star on a white background"].withCStrings { strings in
            var request = initialisedRequest()
            request.prompt = strings[0]
            request.steps = 2
            var images: UnsafeMutablePointer<kiln_image>?
            var count = 0
            XCTAssertEqual(kiln_generate(context, &request, nil, nil, &images, &count), KILN_FAILED)
            let message = String(cString: kiln_last_error(context))
            XCTAssertTrue(message.contains("device lost") && message.contains(vulkan.device.info.name), message)
            XCTAssertEqual(count, 0)
            XCTAssertEqual(kiln_generate(context, &request, nil, nil, &images, &count), KILN_OK, String(cString: kiln_last_error(context)))
            XCTAssertEqual(count, 1)
            kiln_free_images(images, count)
        }
        XCTAssertNil(embedded.device.backend.deviceFailure)
    }
}

extension Array where Element == String {
    /// Calls `body` with C strings for every element, valid during the call.
    func withCStrings<Result>(_ body: ([UnsafePointer<CChar>]) throws -> Result) rethrows -> Result {
        let copies = map { strdup($0) }
        defer { copies.forEach { free($0) } }
        return try body(copies.compactMap { copy in copy.map { UnsafePointer($0) } })
    }
}
