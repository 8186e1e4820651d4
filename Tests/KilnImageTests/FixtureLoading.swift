import Foundation

/// Tests/KilnImageTests/Fixtures/expected.json, written by Tests/Fixtures/generate_image_fixtures.py.
struct ExpectedFixtures: Decodable {
    struct File: Decodable {
        let width: Int
        let height: Int
        let pillowMode: String
        /// Image.open(p).convert("RGB").tobytes(), hex.
        let rgb: String
        /// convert("RGB").convert("L").tobytes(), hex.
        let l: String
        /// Pillow's Image.text after load().
        let text: [String: String]

        enum CodingKeys: String, CodingKey {
            case width, height, rgb, l, text
            case pillowMode = "pillow_mode"
        }
    }

    struct Preprocess: Decodable {
        let rgb: String
        let width: Int
        let height: Int
        let shape: [Int]
        let bits: [UInt32]
    }

    struct Mask: Decodable {
        let l: String
        let width: Int
        let height: Int
        let shape: [Int]
        let bits: [UInt32]
    }

    struct Postprocess: Decodable {
        let shape: [Int]
        let bits: [UInt32]
        let halfWayCount: Int
        let rgb: String

        enum CodingKeys: String, CodingKey {
            case shape, bits, rgb
            case halfWayCount = "half_way_count"
        }
    }

    struct Diffusers: Decodable {
        let preprocess: Preprocess
        let mask: Mask
        let postprocess: Postprocess
    }

    let pillow: String
    let files: [String: File]
    let diffusers: Diffusers

    static func load() throws -> ExpectedFixtures {
        try JSONDecoder().decode(ExpectedFixtures.self, from: Data(contentsOf: try fixtureURL("expected.json")))
    }
}

/// A file under the bundled Fixtures folder, e.g. "flavours/rgb8.png".
func fixtureURL(_ relativePath: String) throws -> URL {
    guard let url = Bundle.module.resourceURL?.appendingPathComponent("Fixtures").appendingPathComponent(relativePath),
          FileManager.default.fileExists(atPath: url.path) else {
        throw FixtureError.missing(relativePath)
    }
    return url
}

enum FixtureError: Error, CustomStringConvertible {
    case missing(String)

    var description: String {
        switch self {
        case .missing(let path): "missing fixture \(path); rerun Tests/Fixtures/generate_image_fixtures.py"
        }
    }
}

func bytes(fromHex hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count - 1, by: 2).map { index in
        UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) ?? 0
    }
}

/// A fresh empty directory under the system temporary directory, removed by the caller's teardown.
func makeScratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-image-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func directoryEntries(_ url: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
}
