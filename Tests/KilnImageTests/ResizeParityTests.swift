import Foundation
@testable import KilnImage
import Testing

/// Pillow's `Image.resize(size, BILINEAR)` and torchvision's `Resize(R)` + `CenterCrop(R)` on PIL
/// images, recorded by Tests/Fixtures/generate_preference_fixtures.py: reductions, enlargements,
/// one side only, gray and RGB, odd excesses (the crop corner rounds half to even). Every
/// output byte must be Pillow's.
struct ResizeParityTests {
    struct Cases: Decodable {
        struct Resize: Decodable {
            let source: String
            let width: Int
            let height: Int
            let output: String
        }
        struct Crop: Decodable {
            let source: String
            let resolution: Int
            let output: String
            let resized: [Int]
            let cropTopLeft: [Int]
            enum CodingKeys: String, CodingKey {
                case source, resolution, output, resized
                case cropTopLeft = "crop_top_left"
            }
        }
        let resizes: [Resize]
        let crops: [Crop]
    }

    static func image(_ name: String) throws -> PNGImage {
        try PNGImage(contentsOf: try fixtureURL("resize/\(name)"))
    }

    static func cases() throws -> Cases {
        try JSONDecoder().decode(Cases.self, from: Data(contentsOf: try fixtureURL("resize/cases.json")))
    }

    @Test func bilinearResizeIsPillowsByteForByte() throws {
        let cases = try Self.cases()
        #expect(cases.resizes.count == 13)
        for testCase in cases.resizes {
            let resized = try Self.image(testCase.source).resizedBilinear(width: testCase.width, height: testCase.height)
            let expected = try Self.image(testCase.output)
            #expect(resized.width == expected.width && resized.height == expected.height && resized.layout == expected.layout, "\(testCase.output)")
            let differing = zip(resized.pixels, expected.pixels).filter { $0 != $1 }.count
            #expect(differing == 0, "\(testCase.output): \(differing) of \(expected.pixels.count) values differ")
        }
    }

    @Test func resizeAndCenterCropIsTorchvisionsByteForByte() throws {
        let cases = try Self.cases()
        #expect(cases.crops.count == 12)
        for testCase in cases.crops {
            let transform = ResizeAndCenterCrop(resolution: testCase.resolution)
            let source = try Self.image(testCase.source).rgb()
            let size = transform.resizedSize(width: source.width, height: source.height)
            #expect([size.width, size.height] == testCase.resized, "\(testCase.output): resized size")
            let outcome = try transform.apply(source)
            #expect([outcome.cropTop, outcome.cropLeft] == testCase.cropTopLeft, "\(testCase.output): crop corner")
            #expect(outcome.originalHeight == source.height && outcome.originalWidth == source.width)
            let expected = try Self.image(testCase.output)
            #expect(outcome.image.width == testCase.resolution && outcome.image.height == testCase.resolution)
            let differing = zip(outcome.image.pixels, expected.pixels).filter { $0 != $1 }.count
            #expect(outcome.image.pixels.count == expected.pixels.count && differing == 0, "\(testCase.output): \(differing) values differ")
        }
    }

    @Test func badSizesAndCropsAreRefused() throws {
        let image = try Self.image("small.png")
        #expect(throws: PNGError.self) { try image.resizedBilinear(width: 0, height: 4) }
        #expect(throws: PNGError.self) { try image.cropped(left: 10, top: 0, width: 4, height: 4) }
        #expect(try image.resizedBilinear(width: image.width, height: image.height) == image)
        #expect(ResizeAndCenterCrop.centeredOffset(1) == 0 && ResizeAndCenterCrop.centeredOffset(3) == 2 && ResizeAndCenterCrop.centeredOffset(5) == 2)
    }
}
