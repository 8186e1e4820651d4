import Foundation
import KilnImage
import XCTest

/// Every PNG flavour decodes to the bytes Pillow's convert("RGB") and convert("L") give.
final class PillowParityTests: XCTestCase {
    func testEveryFixtureDecodesLikePillow() throws {
        let expected = try ExpectedFixtures.load()
        XCTAssertGreaterThanOrEqual(expected.files.count, 27)
        for (path, record) in expected.files.sorted(by: { $0.key < $1.key }) {
            let image = try PNGImage(contentsOf: try fixtureURL(path))
            XCTAssertEqual(image.width, record.width, path)
            XCTAssertEqual(image.height, record.height, path)
            XCTAssertEqual(image.rgb().pixels, bytes(fromHex: record.rgb), "\(path) (Pillow mode \(record.pillowMode)) RGB")
            XCTAssertEqual(image.grayscale().pixels, bytes(fromHex: record.l), "\(path) L")
            XCTAssertEqual(image.rgb().grayscale().pixels, bytes(fromHex: record.l), "\(path) L via RGB")
        }
    }

    func testGrayFlavoursStayGrayAndColourOnesBecomeRGB() throws {
        for name in ["gray1", "gray2", "gray4", "gray8", "gray16", "gray8_trns", "gray_alpha8", "gray_alpha16", "gray16_interlaced"] {
            XCTAssertEqual(try PNGImage(contentsOf: try fixtureURL("flavours/\(name).png")).layout, .grayscale, name)
        }
        for name in ["rgb8", "rgb16", "rgba8", "rgba16", "palette1", "palette8_trns", "rgb8_trns", "rgba16_interlaced"] {
            XCTAssertEqual(try PNGImage(contentsOf: try fixtureURL("flavours/\(name).png")).layout, .rgb, name)
        }
    }

    func testSixteenBitGraySaturatesLikePillow() throws {
        // gray16_samples in the generator starts 0, 1, 128, 254, 255, 256, 257, 511, 4096, ...
        let image = try PNGImage(contentsOf: try fixtureURL("flavours/gray16.png"))
        XCTAssertEqual(Array(image.pixels.prefix(9)), [0, 1, 128, 254, 255, 255, 255, 255, 255])
    }

    func testTextChunksMatchPillow() throws {
        let expected = try ExpectedFixtures.load()
        for path in ["flavours/text_chunks.png", "pillow_parameters.png"] {
            let image = try PNGImage(contentsOf: try fixtureURL(path))
            let text = image.text.reduce(into: [String: String]()) { $0[$1.keyword] = $1.text }
            XCTAssertEqual(text, expected.files[path]?.text, path)
        }
    }

    func testTextChunksKeepFileOrderAndStorage() throws {
        let image = try PNGImage(contentsOf: try fixtureURL("flavours/text_chunks.png"))
        XCTAssertEqual(image.text.map(\.keyword), ["Title", "Description", "Author", "Comment", "Software"])
        XCTAssertEqual(image.text.map(\.storage), [.latin1, .compressedLatin1, .utf8, .compressedUTF8, .latin1])
        XCTAssertEqual(image.text(forKeyword: "Title"), "Caf\u{e9} at night")
        XCTAssertEqual(image.text(forKeyword: "Software"), "after IDAT")
        XCTAssertNil(image.text(forKeyword: "parameters"))
    }

    func testPillowWrittenParametersAndITXt() throws {
        let image = try PNGImage(contentsOf: try fixtureURL("pillow_parameters.png"))
        XCTAssertEqual(image.text.map(\.storage), [.latin1, .utf8, .compressedUTF8])
        let parameters = try XCTUnwrap(image.text(forKeyword: "parameters"))
        XCTAssertTrue(parameters.hasPrefix("a cat wearing a hat, masterpiece\nNegative prompt: blurry, lowres\nSteps: 20,"))
        XCTAssertEqual(image.text(forKeyword: "note"), "\u{e9}t\u{e9} \u{2014} \u{6771}\u{4eac}")
        let kiln = try XCTUnwrap(image.text(forKeyword: "kiln"))
        let object = try JSONSerialization.jsonObject(with: Data(kiln.utf8)) as? [String: Any]
        XCTAssertEqual(object?["seed"] as? Int, 1234)
    }

    func testHeaderDescribesStoredFormat() throws {
        let rgba = try PNGHeader(contentsOf: try fixtureURL("flavours/rgba16_interlaced.png"))
        XCTAssertEqual(rgba, try PNGHeader(data: Data(contentsOf: try fixtureURL("flavours/rgba16_interlaced.png"))))
        XCTAssertEqual([rgba.width, rgba.height, rgba.bitDepth], [11, 9, 16])
        XCTAssertEqual(rgba.colorType, .rgba)
        XCTAssertTrue(rgba.interlaced)
        XCTAssertEqual(rgba.description, "16-bit RGBA, interlaced")
        let palette = try PNGHeader(contentsOf: try fixtureURL("flavours/palette8_trns.png"))
        XCTAssertEqual(palette.colorType, .palette)
        XCTAssertTrue(palette.hasTransparencyChunk)
        XCTAssertEqual(palette.description, "8-bit palette, tRNS")
    }

    func testLumaFormulaOnCorners() {
        XCTAssertEqual(PNGImage.luma(red: 255, green: 255, blue: 255), 255)
        XCTAssertEqual(PNGImage.luma(red: 255, green: 0, blue: 0), 76)
        XCTAssertEqual(PNGImage.luma(red: 0, green: 255, blue: 0), 150)
        XCTAssertEqual(PNGImage.luma(red: 0, green: 0, blue: 255), 29)
    }
}
