import Foundation
import KilnImage
import XCTest

/// Float conversions equal diffusers' VaeImageProcessor bit for bit (values from the fixture generator).
final class DiffusersProcessorTests: XCTestCase {
    func testPreprocessMatchesDiffusers() throws {
        let record = try ExpectedFixtures.load().diffusers.preprocess
        let image = try PNGImage(width: record.width, height: record.height, layout: .rgb, pixels: bytes(fromHex: record.rgb))
        let tensor = try DiffusersImageProcessor.preprocess([image])
        XCTAssertEqual(tensor.shape, record.shape)
        XCTAssertEqual(tensor.values.map(\.bitPattern), record.bits)
    }

    func testPreprocessBatchesAndRepeatsGray() throws {
        let gray = try PNGImage(width: 2, height: 1, layout: .grayscale, pixels: [0, 255])
        let rgb = try PNGImage(width: 2, height: 1, layout: .rgba, pixels: [128, 1, 2, 9, 3, 4, 5, 9])
        let tensor = try DiffusersImageProcessor.preprocess([gray, rgb])
        XCTAssertEqual(tensor.shape, [2, 3, 1, 2])
        let n = DiffusersImageProcessor.normalized
        XCTAssertEqual(tensor.values, [n(0), n(255), n(0), n(255), n(0), n(255), n(128), n(3), n(1), n(4), n(2), n(5)])
        XCTAssertEqual(n(0), -1)
        XCTAssertEqual(n(255), 1)
        XCTAssertThrowsError(try DiffusersImageProcessor.preprocess([gray, try PNGImage(width: 1, height: 1, layout: .rgb, pixels: [1, 2, 3])])) { error in
            XCTAssertEqual(error as? ImageTensorError, .sizeMismatch(index: 1, width: 1, height: 1, expectedWidth: 2, expectedHeight: 1))
        }
        XCTAssertThrowsError(try DiffusersImageProcessor.preprocess([]))
    }

    func testMaskMatchesDiffusers() throws {
        let record = try ExpectedFixtures.load().diffusers.mask
        let mask = try PNGImage(width: record.width, height: record.height, layout: .grayscale, pixels: bytes(fromHex: record.l))
        let tensor = try DiffusersImageProcessor.preprocessMasks([mask])
        XCTAssertEqual(tensor.shape, record.shape)
        XCTAssertEqual(tensor.values.map(\.bitPattern), record.bits)
        // The ramp holds every level once: 127 is below the threshold, 128 at it.
        XCTAssertEqual(tensor.values[127], 0)
        XCTAssertEqual(tensor.values[128], 1)
    }

    func testMaskFromRGBUsesPillowLuma() throws {
        // luma(200, 60, 60) = 100 -> 0; luma(60, 200, 60) = 140 -> 1.
        let mask = try PNGImage(width: 2, height: 1, layout: .rgb, pixels: [200, 60, 60, 60, 200, 60])
        XCTAssertEqual(try DiffusersImageProcessor.preprocessMasks([mask]).values, [0, 1])
    }

    func testPostprocessMatchesDiffusersIncludingHalfWayRounding() throws {
        let record = try ExpectedFixtures.load().diffusers.postprocess
        XCTAssertGreaterThan(record.halfWayCount, 50, "the fixture should pin many exact .5 cases")
        let decoded = try ImageTensor(shape: record.shape, values: record.bits.map(Float.init(bitPattern:)))
        let images = try DiffusersImageProcessor.postprocess(decoded)
        XCTAssertEqual(images.count, 1)
        XCTAssertEqual(images[0].layout, .rgb)
        XCTAssertEqual(images[0].pixels, bytes(fromHex: record.rgb))
    }

    func testHalfWayValuesRoundToEven() {
        // (x * 0.5 + 0.5) * 255 == 0.5 exactly for x = 1/255 - 1 (float32): rounds to 0; 1.5 rounds to 2.
        for (k, expected) in [(0, UInt8(0)), (1, 2), (2, 2), (127, 128), (254, 254)] {
            let target = Float(k) + 0.5
            var unit = target / 255
            for _ in 0..<8 where unit * 255 != target { unit = unit * 255 < target ? unit.nextUp : unit.nextDown }
            guard unit * 255 == target else { continue }
            let x = (unit - 0.5) * 2
            guard x * 0.5 + 0.5 == unit else { continue }
            XCTAssertEqual(DiffusersImageProcessor.pixel(fromDecoded: x), expected, "k = \(k)")
        }
        XCTAssertEqual(DiffusersImageProcessor.pixel(fromDecoded: -3), 0)
        XCTAssertEqual(DiffusersImageProcessor.pixel(fromDecoded: 3), 255)
        XCTAssertEqual(DiffusersImageProcessor.pixel(fromDecoded: .nan), 0)
        XCTAssertEqual(DiffusersImageProcessor.pixel(fromDecoded: .infinity), 255)
    }

    func testPostprocessLayoutsFollowChannelCount() throws {
        for (channels, layout) in [(1, PNGImage.ChannelLayout.grayscale), (2, .grayscaleAlpha), (3, .rgb), (4, .rgba)] {
            let tensor = try ImageTensor(shape: [2, channels, 1, 3], values: (0..<(6 * channels)).map { Float($0) / Float(6 * channels) * 2 - 1 })
            let images = try DiffusersImageProcessor.postprocess(tensor)
            XCTAssertEqual(images.map(\.layout), [layout, layout])
            // Channel-planar in, interleaved out.
            XCTAssertEqual(images[0].pixels[channels - 1], DiffusersImageProcessor.pixel(fromDecoded: tensor.values[(channels - 1) * 3]))
        }
        XCTAssertThrowsError(try DiffusersImageProcessor.postprocess(try ImageTensor(shape: [1, 5, 1, 1], values: [0, 0, 0, 0, 0])))
        XCTAssertThrowsError(try ImageTensor(shape: [1, 3, 2], values: [0, 0, 0, 0, 0, 0]))
        XCTAssertThrowsError(try ImageTensor(shape: [1, 3, 1, 1], values: [0, 0]))
    }

    func testRoundTripThroughTensorIsExact() throws {
        let image = try PNGImage(width: 16, height: 16, layout: .rgb, pixels: (0..<768).map { UInt8($0 % 256) })
        let back = try DiffusersImageProcessor.postprocess(try DiffusersImageProcessor.preprocess([image]))
        XCTAssertEqual(back, [image])
    }
}
