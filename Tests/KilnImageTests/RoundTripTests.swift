import Foundation
import KilnImage
import XCTest

/// Writing then reading gives back the pixels and text; the bytes are deterministic.
final class RoundTripTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private func pattern(width: Int, height: Int, layout: PNGImage.ChannelLayout, seed: Int) -> [UInt8] {
        (0..<(width * height * layout.channels)).map { UInt8(truncatingIfNeeded: $0 &* 73 &+ seed &* 151 &+ ($0 >> 3)) }
    }

    func testEveryLayoutRoundTripsThroughAFile() throws {
        for layout in PNGImage.ChannelLayout.allCases {
            let image = try PNGImage(width: 13, height: 7, layout: layout, pixels: pattern(width: 13, height: 7, layout: layout, seed: 3),
                                     text: [PNGTextChunk(keyword: "parameters", text: "a \(layout.rawValue) test\nSteps: 4")])
            let url = scratch.appendingPathComponent("\(layout.rawValue).png")
            try image.write(to: url)
            let read = try PNGImage(contentsOf: url)
            XCTAssertEqual(read.text, image.text, layout.rawValue)
            XCTAssertEqual(read.width, 13)
            XCTAssertEqual(read.height, 7)
            // Reading drops alpha, as Pillow's convert("RGB") does.
            switch layout {
            case .grayscale, .rgb: XCTAssertEqual(read, image, layout.rawValue)
            case .grayscaleAlpha: XCTAssertEqual(read, image.grayscale(), layout.rawValue)
            case .rgba: XCTAssertEqual(read, image.rgb(), layout.rawValue)
            }
            XCTAssertEqual(try PNGHeader(contentsOf: url).colorType.rawValue, [.grayscale: 0, .grayscaleAlpha: 4, .rgb: 2, .rgba: 6][layout])
        }
        XCTAssertEqual(try directoryEntries(scratch), ["grayscale.png", "grayscaleAlpha.png", "rgb.png", "rgba.png"])
    }

    func testFixturesRoundTripThroughMemory() throws {
        for name in ["palette4_interlaced", "rgba16", "gray2", "text_chunks"] {
            let image = try PNGImage(contentsOf: try fixtureURL("flavours/\(name).png"))
            XCTAssertEqual(try PNGImage(data: image.pngData()), image, name)
        }
    }

    func testTextStorageChoiceFollowsPillowAddText() throws {
        XCTAssertEqual(PNGTextChunk(keyword: "parameters", text: "Caf\u{e9}, \u{a3}5, \u{ff}").storage, .latin1)
        XCTAssertEqual(PNGTextChunk(keyword: "parameters", text: "\u{6771}\u{4eac} \u{2713}").storage, .utf8)
        XCTAssertEqual(PNGTextChunk.international(keyword: "kiln", text: "{}", compressed: true).storage, .compressedUTF8)
        XCTAssertEqual(PNGTextChunk.international(keyword: "kiln", text: "{}").storage, .utf8)
    }

    func testEveryTextStorageRoundTrips() throws {
        let json = #"{"prompt":"\u732b \u2713","seed":42,"steps":30}"#
        let text = [
            PNGTextChunk(keyword: "parameters", text: "a cat\nNegative prompt: dog\nSteps: 30, Seed: 42"),
            PNGTextChunk(keyword: "Comment", text: "\u{732b} \u{1F431} cat"),
            PNGTextChunk(keyword: "Description", text: String(repeating: "long zTXt text ", count: 40), storage: .compressedLatin1),
            PNGTextChunk.international(keyword: "kiln", text: json, compressed: true),
            PNGTextChunk(keyword: "empty", text: ""),
            PNGTextChunk(keyword: "parameters", text: "a later duplicate"),
        ]
        let image = try PNGImage(width: 2, height: 2, layout: .rgb, pixels: Array(0..<12), text: text)
        let read = try PNGImage(data: image.pngData())
        XCTAssertEqual(read.text, text)
        XCTAssertEqual(read.text(forKeyword: "parameters"), "a later duplicate")
        XCTAssertEqual(read.text(forKeyword: "kiln"), json)
    }

    func testSameImageWritesIdenticalBytes() throws {
        let text = [PNGTextChunk(keyword: "parameters", text: "seed 1"), .international(keyword: "kiln", text: #"{"a":1}"#, compressed: true)]
        let image = try PNGImage(width: 64, height: 48, layout: .rgb, pixels: pattern(width: 64, height: 48, layout: .rgb, seed: 9), text: text)
        let first = scratch.appendingPathComponent("first.png"), second = scratch.appendingPathComponent("second.png")
        try image.write(to: first)
        try image.write(to: second)
        let firstBytes = try Data(contentsOf: first)
        XCTAssertEqual(firstBytes, try Data(contentsOf: second))
        XCTAssertEqual(firstBytes, try image.pngData())
        XCTAssertFalse(chunkTypes(firstBytes).contains("tIME"))
        XCTAssertEqual(chunkTypes(firstBytes), ["IHDR", "tEXt", "iTXt", "IDAT", "IEND"])
    }

    func testOverwriteReplacesTheOldFile() throws {
        let url = scratch.appendingPathComponent("out.png")
        let old = try PNGImage(width: 1, height: 1, layout: .grayscale, pixels: [7])
        let new = try PNGImage(width: 3, height: 1, layout: .rgb, pixels: Array(1...9))
        try old.write(to: url)
        try new.write(to: url)
        XCTAssertEqual(try PNGImage(contentsOf: url), new)
        XCTAssertEqual(try directoryEntries(scratch), ["out.png"])
    }

    func testCompressionLevelsDecodeAlike() throws {
        let image = try PNGImage(width: 32, height: 32, layout: .rgba, pixels: pattern(width: 32, height: 32, layout: .rgba, seed: 1))
        for level in [0, 1, 9] {
            XCTAssertEqual(try PNGImage(data: image.pngData(compressionLevel: level)), image.rgb(), "level \(level)")
        }
        XCTAssertThrowsError(try image.pngData(compressionLevel: 10))
    }

    func testInvalidImagesAndTextAreRejected() throws {
        XCTAssertThrowsError(try PNGImage(width: 2, height: 2, layout: .rgb, pixels: [1, 2, 3])) { error in
            guard case PNGError.invalidImage = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try PNGImage(width: 0, height: 2, layout: .rgb, pixels: []))
        let bad: [(PNGTextChunk, String)] = [
            (PNGTextChunk(keyword: "", text: "x"), "1 to 79"),
            (PNGTextChunk(keyword: String(repeating: "k", count: 80), text: "x"), "1 to 79"),
            (PNGTextChunk(keyword: " lead", text: "x"), "spaces"),
            (PNGTextChunk(keyword: "two  spaces", text: "x"), "spaces"),
            (PNGTextChunk(keyword: "tab\there", text: "x"), "not allowed"),
            (PNGTextChunk(keyword: "\u{6771}", text: "x"), "Latin-1"),
            (PNGTextChunk(keyword: "nul", text: "a\u{0}b"), "NUL"),
            (PNGTextChunk(keyword: "latin", text: "\u{6771}", storage: .latin1), "iTXt"),
        ]
        for (chunk, fragment) in bad {
            let image = try PNGImage(width: 1, height: 1, layout: .grayscale, pixels: [0], text: [chunk])
            XCTAssertThrowsError(try image.pngData(), chunk.keyword) { error in
                guard case PNGError.invalidText = error else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
            }
        }
    }

    private func chunkTypes(_ data: Data) -> [String] {
        var types: [String] = []
        var offset = 8
        let bytes = [UInt8](data)
        while offset + 8 <= bytes.count {
            let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            types.append(String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self))
            offset += 12 + length
        }
        return types
    }
}
