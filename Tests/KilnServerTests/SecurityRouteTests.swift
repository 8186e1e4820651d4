import Foundation
import Hummingbird
import HummingbirdTesting
@testable import KilnServer
import XCTest

/// Authentication, CORS, the body limit and jobs' life over live routes.
final class SecurityRouteTests: XCTestCase {
    func test_basicAuthOnEveryRoute() async throws {
        let service = try ServerFixtures.service { $0.credentials = [BasicCredential(user: "ann", password: "pa:ss")] }
        try await ServerFixtures.withServer(service) { client in
            for path in ["/health", "/", "/metrics", "/sdapi/v1/options", "/v1/models", "/kiln/v1/jobs", "/nowhere"] {
                let refused = try await client.execute(uri: path, method: .get)
                XCTAssertTrue(refused.status == .unauthorized, "\(path)")
                XCTAssertTrue(refused.headers[.wwwAuthenticate]?.hasPrefix("Basic") == true)
            }
            let basic = "Basic " + Data("ann:pa:ss".utf8).base64EncodedString()
            let response1 = try await client.execute(uri: "/health", method: .get, headers: [.authorization: basic])
            XCTAssertTrue(response1.status == .ok)
            let response2 = try await client.execute(uri: "/health", method: .get, headers: [.authorization: "Bearer ann:pa:ss"])
            XCTAssertTrue(response2.status == .ok)
            let wrong = "Basic " + Data("ann:pa:sS".utf8).base64EncodedString()
            let response3 = try await client.execute(uri: "/health", method: .get, headers: [.authorization: wrong])
            XCTAssertTrue(response3.status == .unauthorized)
        }
    }

    func test_corsOnlyForListedOrigins() async throws {
        let service = try ServerFixtures.service { $0.corsAllowedOrigins = ["http://app.example"] }
        try await ServerFixtures.withServer(service) { client in
            let allowed = try await client.execute(uri: "/health", method: .get, headers: [.origin: "http://app.example"])
            XCTAssertTrue(allowed.headers[.accessControlAllowOrigin] == "http://app.example")
            let other = try await client.execute(uri: "/health", method: .get, headers: [.origin: "http://evil.example"])
            XCTAssertTrue(other.headers[.accessControlAllowOrigin] == nil)
            let preflight = try await client.execute(
                uri: "/sdapi/v1/txt2img", method: .options,
                headers: [.origin: "http://app.example", .accessControlRequestMethod: "POST", .accessControlRequestHeaders: "content-type"])
            XCTAssertTrue(preflight.status == .noContent)
            XCTAssertTrue(preflight.headers[.accessControlAllowMethods]?.contains("POST") == true)
        }
        let closed = try ServerFixtures.service()
        try await ServerFixtures.withServer(closed) { client in
            let response = try await client.execute(uri: "/health", method: .get, headers: [.origin: "http://app.example"])
            XCTAssertTrue(response.headers[.accessControlAllowOrigin] == nil)
        }
    }

    func test_bodiesOverTheLimitGet413() async throws {
        let service = try ServerFixtures.service { $0.maximumBodyBytes = 1000 }
        try await ServerFixtures.withServer(service) { client in
            let big = ServerFixtures.body(#"{"prompt": ""# + String(repeating: "x", count: 2000) + #""}"#)
            for path in ["/sdapi/v1/img2img", "/kiln/v1/jobs", "/v1/images/generations", "/sdapi/v1/png-info"] {
                let response = try await client.execute(uri: path, method: .post, body: big)
                XCTAssertTrue(response.status == .contentTooLarge, "\(path)")
            }
        }
    }

    func test_jobsRunAndAreCancelled() async throws {
        let service = try ServerFixtures.service()
        try await ServerFixtures.withServer(service) { client in
            let submitted = try await client.execute(
                uri: "/kiln/v1/jobs", method: .post, body: ServerFixtures.body(#"{"prompt": "a job", "steps": 2, "seed": 5}"#))
            XCTAssertTrue(submitted.status == .accepted)
            let job = try ServerFixtures.json(submitted)
            guard case .string(let id) = job["id"] else { XCTFail("no id"); return }
            XCTAssertTrue(job["position"] != nil && job["position"] != JSONValue.null)
            var status = JSONValue.null
            for _ in 0..<600 {
                status = try ServerFixtures.json(try await client.execute(uri: "/kiln/v1/jobs/\(id)", method: .get))
                if status["status"] == .string("done") { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            XCTAssertTrue(status["status"] == .string("done"))
            guard case .array(let images) = status["images"] else { XCTFail("no images"); return }
            XCTAssertTrue(images.count == 1)
            let png = try await client.execute(uri: "/kiln/v1/jobs/\(id)/images/0", method: .get)
            XCTAssertTrue(png.headers[.contentType] == "image/png")
            let response4 = try await client.execute(uri: "/kiln/v1/jobs/\(id)", method: .delete)
            XCTAssertTrue(response4.status == .conflict)
            let response5 = try await client.execute(uri: "/kiln/v1/jobs/none", method: .get)
            XCTAssertTrue(response5.status == .notFound)
            let bad = try await client.execute(uri: "/kiln/v1/jobs", method: .post, body: ServerFixtures.body(#"{"prompt": "x", "sampler": "magic"}"#))
            XCTAssertTrue(bad.status == .unprocessableContent)
            XCTAssertTrue(try ServerFixtures.json(bad)["field"] == .string("sampler"))
        }
    }
}
