import Foundation
import Hummingbird
import HummingbirdTesting
import Kiln
@testable import KilnServer
import XCTest

/// The A1111 routes over a real tiny model: bytes identical to the pipeline's own PNG, fields
/// validated by name, the bounded queue.
final class A1111RouteTests: XCTestCase {
    func test_txt2imgReturnsThePNGKilnGenerateWrites() async throws {
        let service = try ServerFixtures.service()
        let body = #"{"prompt": "a red car", "negative_prompt": "", "seed": 42, "steps": 3, "width": 64, "height": 64, "sampler_name": "Euler a", "cfg_scale": 7.5, "restore_faces": false, "enable_hr": false, "hr_scale": 2, "eta": 1.0, "s_churn": 0, "alwayson_scripts": {}}"#
        try await ServerFixtures.withServer(service) { client in
            let response = try await client.execute(uri: "/sdapi/v1/txt2img", method: .post, body: ServerFixtures.body(body))
            XCTAssertTrue(response.status == .ok)
            let json = try ServerFixtures.json(response)
            guard case .array(let images) = json["images"], case .string(let first) = images.first, let png = Data(base64Encoded: first) else {
                XCTFail("no image in \(json.serialized().prefix(300))")
                return
            }
            // The same request through the pipeline directly, labelled as `kiln generate` labels it.
            let device = try BackendChoice.open("cpu")
            let pipeline = try Pipelines.open(try ServerFixtures.model(), backend: device.backend, dtype: .float32)
            var request = pipeline.defaults.request(.prompt("a red car", negative: nil), seed: 42)
            request.steps = 3
            request.width = 64
            request.height = 64
            request.guidanceScale = 7.5
            request.sampler = .eulerAncestral
            request.options.promptSyntax = .a1111
            let result = try pipeline.generate(request, progress: { _ in }, isCancelled: { false })
            let metadata = GenerationMetadata(result: result, index: 0, pipeline: pipeline, origin: .init(pipeline: pipeline, device: device))
            XCTAssertTrue(png == (try GeneratedImages.pngData(result, index: 0, metadata: metadata)))
            guard case .string(let infoText) = json["info"] else { XCTFail("no info"); return }
            let info = try JSONValue.parse(Data(infoText.utf8))
            XCTAssertTrue(info["seed"] == .integer(42))
            XCTAssertTrue(info["sampler_name"] == .string("Euler a"))
            XCTAssertTrue(json["parameters"]?["steps"] == .integer(3))
        }
    }

    func test_badFieldsAreNamed() async throws {
        let service = try ServerFixtures.service()
        try await ServerFixtures.withServer(service) { client in
            let cases: [(String, HTTPResponse.Status, String?)] = [
                (#"{"prompt": "x", "steps": "many"}"#, .unprocessableContent, "steps"),
                (#"{"prompt": "x", "width": 60, "height": 64, "steps": 1}"#, .unprocessableContent, "width"),
                (#"{"prompt": "x", "sampler_name": "Euler Zeta"}"#, .unprocessableContent, "sampler_name"),
                (#"{"prompt": "x", "enable_hr": true}"#, .unprocessableContent, "enable_hr"),
                (#"{"prompt": "x", "override_settings": {"CLIP_stop_at_last_layers": 2}}"#, .unprocessableContent, "override_settings.CLIP_stop_at_last_layers"),
                (#"{"prompt": "x", "override_settings": {"sd_model_checkpoint": "../../etc/passwd"}}"#, .unprocessableContent, "override_settings.sd_model_checkpoint"),
                (#"{"prompt": "x <lora:style:0.8>", "steps": 1}"#, .unprocessableContent, "prompt"),
                (#"{"prompt": "x""#, .badRequest, nil),
            ]
            for (body, status, field) in cases {
                let response = try await client.execute(uri: "/sdapi/v1/txt2img", method: .post, body: ServerFixtures.body(body))
                XCTAssertTrue(response.status == status, "\(body)")
                let json = try ServerFixtures.json(response)
                XCTAssertTrue(json["field"] == (field.map { .string($0) } ?? .null), "\(body): \(json.serialized())")
            }
        }
    }

    func test_aFullQueueAnswers429WithRetryAfter() async throws {
        let service = try ServerFixtures.service { $0.maximumQueue = 1 }
        try await ServerFixtures.withServer(service) { client in
            let long = #"{"prompt": "long", "steps": 1000, "sampler": "euler", "width": 64, "height": 64}"#
            var ids: [String] = []
            for _ in 0..<2 {
                let response = try await client.execute(uri: "/kiln/v1/jobs", method: .post, body: ServerFixtures.body(long))
                XCTAssertTrue(response.status == .accepted)
                if case .string(let id) = try ServerFixtures.json(response)["id"] { ids.append(id) }
            }
            let refused = try await client.execute(uri: "/sdapi/v1/txt2img", method: .post, body: ServerFixtures.body(#"{"prompt": "one more", "steps": 1, "width": 64, "height": 64}"#))
            XCTAssertTrue(refused.status == .tooManyRequests)
            XCTAssertTrue(Int(refused.headers[.retryAfter] ?? "") ?? 0 >= 1)
            for id in ids.reversed() { _ = try await client.execute(uri: "/kiln/v1/jobs/\(id)", method: .delete) }
            let listing = try ServerFixtures.json(try await client.execute(uri: "/kiln/v1/jobs", method: .get))
            guard case .array(let jobs) = listing["jobs"] else { XCTFail("no jobs"); return }
            XCTAssertTrue(jobs.allSatisfy { $0["status"] == .string("cancelled") })
        }
    }

    func test_samplersSchedulersAndModels() async throws {
        let service = try ServerFixtures.service()
        try await ServerFixtures.withServer(service) { client in
            let samplers = try ServerFixtures.json(try await client.execute(uri: "/sdapi/v1/samplers", method: .get))
            guard case .array(let list) = samplers else { XCTFail("not a list"); return }
            XCTAssertTrue(list.compactMap { $0["name"] }.contains(.string("DPM++ 2M")))
            let models = try ServerFixtures.json(try await client.execute(uri: "/sdapi/v1/sd-models", method: .get))
            guard case .array(let entries) = models, let first = entries.first else { XCTFail("no models"); return }
            XCTAssertTrue(first["model_name"] == .string(try ServerFixtures.model().lastPathComponent))
            let options = try ServerFixtures.json(try await client.execute(uri: "/sdapi/v1/options", method: .get))
            XCTAssertTrue(options["sd_model_checkpoint"] == first["title"])
        }
    }
}
