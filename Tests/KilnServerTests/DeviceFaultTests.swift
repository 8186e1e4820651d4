import Foundation
import Hummingbird
import HummingbirdTesting
import Kiln
@testable import KilnServer
import XCTest

/// A device lost in the middle of a request: that request is answered 503, the server opens the
/// device and the model again, and the next request is served.
final class DeviceFaultTests: XCTestCase {
    func test_aLostDeviceFailsOneRequestWith503AndTheNextIsServed() async throws {
        var configuration = ServerConfiguration()
        configuration.model = try ServerFixtures.model()
        let device = try BackendChoice.open("vulkan")
        let service = try GenerationService(configuration: configuration, device: device, dtype: .float32)
        let vulkan = try XCTUnwrap(device.backend as? VulkanBackend)
        vulkan.device.injectFault(InjectedFault(.deviceLost, at: .run, ordinal: 2))
        let body = #"{"prompt": "a red car", "seed": 1, "steps": 2, "width": 64, "height": 64}"#
        try await ServerFixtures.withServer(service) { client in
            let failed = try await client.execute(uri: "/sdapi/v1/txt2img", method: .post, body: ServerFixtures.body(body))
            XCTAssertEqual(failed.status.code, 503)
            let detail = try ServerFixtures.json(failed)["detail"]
            guard case .string(let message) = detail else { return XCTFail("no detail") }
            XCTAssertTrue(message.contains("device lost") && message.contains(vulkan.device.info.name), message)

            let served = try await client.execute(uri: "/sdapi/v1/txt2img", method: .post, body: ServerFixtures.body(body))
            XCTAssertEqual(served.status, .ok)
            guard case .array(let images) = try ServerFixtures.json(served)["images"] else { return XCTFail("no images") }
            XCTAssertEqual(images.count, 1)
        }
        XCTAssertNil(service.device.backend.deviceFailure)
        XCTAssertFalse(service.device.backend === vulkan, "the lost device is still in use")
    }
}
