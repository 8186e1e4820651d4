import Foundation
import KilnImage
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed write leaves the destination as it was and no temporary file behind.
final class AtomicWriteTests: XCTestCase {
    private var scratch: URL!
    private var image: PNGImage!

    override func setUpWithError() throws {
        scratch = try makeScratchDirectory()
        image = try PNGImage(width: 4, height: 4, layout: .rgb, pixels: (0..<48).map { UInt8($0 * 5) },
                             text: [PNGTextChunk(keyword: "parameters", text: "new")])
    }
    override func tearDownWithError() throws {
        chmod(scratch.path, 0o755)
        try? FileManager.default.removeItem(at: scratch)
    }

    func testRenameOntoADirectoryFailsCleanly() throws {
        let destination = scratch.appendingPathComponent("taken.png")
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: destination.appendingPathComponent("inside.txt"))
        XCTAssertThrowsError(try image.write(to: destination)) { error in
            guard case PNGError.writeFailed(let path, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, destination.path)
            XCTAssertTrue(detail.contains("renaming"), detail)
        }
        XCTAssertEqual(try directoryEntries(scratch), ["taken.png"])
        XCTAssertEqual(try directoryEntries(destination), ["inside.txt"])
    }

    func testMissingDirectoryFailsWithoutCreatingAnything() throws {
        let destination = scratch.appendingPathComponent("no/such/dir/out.png")
        XCTAssertThrowsError(try image.write(to: destination)) { error in
            guard case PNGError.writeFailed(_, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("temporary file"), detail)
        }
        XCTAssertEqual(try directoryEntries(scratch), [])
    }

    func testReadOnlyDirectoryKeepsTheOldFile() throws {
        // Root ignores directory permissions; testFileSizeLimitKeepsTheOldFile covers the same promise there.
        try XCTSkipIf(geteuid() == 0, "running as root: permissions are not enforced")
        let destination = scratch.appendingPathComponent("out.png")
        let old = Data("old bytes".utf8)
        try old.write(to: destination)
        XCTAssertEqual(chmod(scratch.path, 0o555), 0)
        XCTAssertThrowsError(try image.write(to: destination)) { error in
            guard case PNGError.writeFailed = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try Data(contentsOf: destination), old)
        XCTAssertEqual(try directoryEntries(scratch), ["out.png"])
    }

    /// A write that fails halfway (here: the process's file-size limit, as a full disk would) removes
    /// the partial temporary file and leaves the previous image in place.
    func testFileSizeLimitKeepsTheOldFile() throws {
        let destination = scratch.appendingPathComponent("out.png")
        let old = Data("old bytes".utf8)
        try old.write(to: destination)
        // xorshift noise: incompressible, so the PNG is far above the 4 KiB limit set below.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let noise = (0..<(128 * 128 * 3)).map { _ -> UInt8 in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 32)
        }
        let noisy = try PNGImage(width: 128, height: 128, layout: .rgb, pixels: noise)
        XCTAssertGreaterThan(try noisy.pngData().count, 40_000)

        var saved = rlimit()
        XCTAssertEqual(getrlimit(resourceFileSize, &saved), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = saved
        limited.rlim_cur = 4096
        XCTAssertEqual(setrlimit(resourceFileSize, &limited), 0)
        let result = Result { try noisy.write(to: destination) }
        XCTAssertEqual(setrlimit(resourceFileSize, &saved), 0)
        signal(SIGXFSZ, previousHandler)

        XCTAssertThrowsError(try result.get()) { error in
            guard case PNGError.writeFailed(_, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("writing the temporary file"), detail)
        }
        XCTAssertEqual(try Data(contentsOf: destination), old)
        XCTAssertEqual(try directoryEntries(scratch), ["out.png"])
    }

    func testEncodingFailureTouchesNothing() throws {
        let destination = scratch.appendingPathComponent("out.png")
        try image.write(to: destination)
        let before = try Data(contentsOf: destination)
        var bad: PNGImage = image
        bad.text = [PNGTextChunk(keyword: "bad\u{0}keyword", text: "x")]
        XCTAssertThrowsError(try bad.write(to: destination))
        XCTAssertEqual(try Data(contentsOf: destination), before)
        XCTAssertEqual(try directoryEntries(scratch), ["out.png"])
    }
}

#if canImport(Glibc)
private let resourceFileSize = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
#else
private let resourceFileSize = RLIMIT_FSIZE
#endif
