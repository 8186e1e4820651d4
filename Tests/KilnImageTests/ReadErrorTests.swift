import Foundation
import KilnImage
import XCTest

/// Bad input fails with an error that names the file and the problem, never a crash.
final class ReadErrorTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private func write(_ bytes: Data, _ name: String) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try bytes.write(to: url)
        return url
    }

    func testMissingFile() {
        let url = scratch.appendingPathComponent("absent.png")
        XCTAssertThrowsError(try PNGImage(contentsOf: url)) { error in
            XCTAssertEqual(error as? PNGError, .notFound(path: url.path))
            XCTAssertEqual("\(error)", "\(url.path): no such file")
        }
    }

    func testDirectoryIsUnreadable() {
        XCTAssertThrowsError(try PNGImage(contentsOf: scratch)) { error in
            guard case PNGError.unreadable(let path, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, scratch.path)
            XCTAssertTrue(reason.contains("directory"), reason)
        }
    }

    func testRelativePathsAreNamedAsGiven() {
        XCTAssertThrowsError(try PNGImage(contentsOf: URL(fileURLWithPath: "no/such/dir/image.png"))) { error in
            XCTAssertEqual(error as? PNGError, .notFound(path: "no/such/dir/image.png"))
        }
    }

    func testNotAPNG() throws {
        for (name, bytes) in [("text.png", Data("hello, not an image\n".utf8)), ("empty.png", Data()),
                              ("jpeg.png", Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 0x4A, 0x46, 0x49, 0x46]))] {
            let url = try write(bytes, name)
            XCTAssertThrowsError(try PNGImage(contentsOf: url), name) { error in
                XCTAssertEqual(error as? PNGError, .notPNG(path: url.path))
                XCTAssertTrue("\(error)".contains("not a PNG"))
            }
        }
    }

    func testTruncatedFiles() throws {
        let whole = try Data(contentsOf: try fixtureURL("flavours/rgb8_interlaced.png"))
        // Inside the signature, inside IHDR, inside IDAT, and just before IEND.
        for length in [4, 20, whole.count / 2, whole.count - 12] {
            let url = try write(whole.prefix(length), "cut\(length).png")
            XCTAssertThrowsError(try PNGImage(contentsOf: url), "\(length) bytes") { error in
                guard case PNGError.truncated(let path, let detail) = error else { return XCTFail("\(length): \(error)") }
                XCTAssertEqual(path, url.path)
                XCTAssertFalse(detail.isEmpty)
            }
        }
    }

    func testCorruptDataCarriesLibpngMessage() throws {
        var bytes = [UInt8](try Data(contentsOf: try fixtureURL("flavours/rgb8.png")))
        bytes[16 + 3] ^= 0x40  // a bit of IHDR's width: the chunk's CRC no longer matches
        let url = try write(Data(bytes), "crc.png")
        XCTAssertThrowsError(try PNGImage(contentsOf: url)) { error in
            guard case PNGError.corrupt(let path, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, url.path)
            XCTAssertTrue(detail.contains("CRC"), detail)
        }
    }

    func testCorruptImageData() throws {
        let whole = [UInt8](try Data(contentsOf: try fixtureURL("flavours/rgb8.png")))
        // Rewrite the first IDAT's payload with garbage and a correct CRC, so zlib is what fails.
        var bytes = whole
        let payload = try XCTUnwrap(findPayload(ofChunk: "IDAT", in: bytes))
        for index in payload { bytes[index] = 0xFF }
        let crc = crc32(Array(bytes[(payload.lowerBound - 4)..<payload.upperBound]))
        for shift in 0..<4 { bytes[payload.upperBound + shift] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * shift)) }
        XCTAssertThrowsError(try PNGImage(data: Data(bytes), name: "garbled")) { error in
            guard case PNGError.corrupt(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "garbled")
        }
    }

    func testAbsurdSizeIsRejectedBeforeAllocating() throws {
        let url = try fixtureURL("huge_dimensions.png")
        XCTAssertThrowsError(try PNGImage(contentsOf: url)) { error in
            guard case PNGError.tooLarge(_, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("200000 x 200000"), detail)
            XCTAssertTrue(detail.contains("120000000000 bytes"), detail)
        }
        // The header alone is fine to read.
        XCTAssertEqual(try PNGHeader(contentsOf: url).width, 200000)
    }

    func testChunkLongerThanTheFileIsRefusedBeforeAllocating() throws {
        // Found by Fuzz/ (png): 333 bytes whose iTXt chunk declares 1,275,068,440 made libpng
        // allocate that much before finding the file too short.
        let url = try fixtureURL("fuzz/itxt_longer_than_file.png")
        for read in [{ _ = try PNGImage(contentsOf: url) }, { _ = try PNGHeader(contentsOf: url) }] {
            XCTAssertThrowsError(try read()) { error in
                guard case PNGError.truncated(let path, let detail) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(path, url.path)
                XCTAssertEqual(detail, "chunk 'iTXt' at byte 135 declares 1275068440 bytes, but the file has 190 left")
            }
        }
        // A cut-off IDAT is left to libpng: the header of a partly written file still reads.
        let whole = try Data(contentsOf: try fixtureURL("flavours/rgb8.png"))
        let payload = try XCTUnwrap(findPayload(ofChunk: "IDAT", in: [UInt8](whole)))
        XCTAssertEqual(try PNGHeader(data: whole.prefix(payload.lowerBound + 2)).width, try PNGHeader(data: whole).width)
    }

    func testCallerLimitApplies() throws {
        let url = try fixtureURL("flavours/rgb16.png")  // 7 x 5 x 3 x 2 bytes decoded
        XCTAssertNoThrow(try PNGImage(contentsOf: url, maximumBytes: 210))
        XCTAssertThrowsError(try PNGImage(contentsOf: url, maximumBytes: 209)) { error in
            guard case PNGError.tooLarge = error else { return XCTFail("\(error)") }
        }
    }

    private func findPayload(ofChunk type: String, in bytes: [UInt8]) -> Range<Int>? {
        var offset = 8
        while offset + 8 <= bytes.count {
            let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            if String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self) == type {
                return offset + 8..<offset + 8 + length
            }
            offset += 12 + length
        }
        return nil
    }

    private func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
