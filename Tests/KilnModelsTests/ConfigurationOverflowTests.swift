import Foundation
import Kiln
import Testing

/// Config files whose sizes made Kiln trap (an index out of range, a division by zero, an integer
/// overflow) while it read or checked them, found with Fuzz/'s model-config target: each must be
/// refused with an error naming the file and the field.
struct ConfigurationOverflowTests {
    static let file = "/models/x/config.json"

    static var unetBlocks: [String: Any] { [
        "block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    ] }

    private func refused(_ expected: String, _ read: () throws -> Void) {
        let error = #expect(throws: ConfigurationError.self) { try read() }
        #expect(error?.file == Self.file)
        #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
    }

    @Test func unetBlockListsAndHeadCountsAreChecked() throws {
        let empty: [String: Any] = ["block_out_channels": [Int](), "down_block_types": [String](), "up_block_types": [String]()]
        refused("'block_out_channels' [] must list 1 or more channel counts") { _ = try UNetConfiguration(json: empty, file: Self.file) }
        var huge = Self.unetBlocks
        huge["block_out_channels"] = [Int.max, 64]
        refused("must list 1 or more channel counts in 1...1048576") { _ = try UNetConfiguration(json: huge, file: Self.file) }
        for heads in [0, -1] {
            var config = Self.unetBlocks
            config["attention_head_dim"] = heads
            refused("block 0: \(heads) attention heads; they must be positive") { _ = try UNetConfiguration(json: config, file: Self.file) }
        }
        var minimum = Self.unetBlocks
        minimum["block_out_channels"] = [Int.min, Int.min]
        minimum["attention_head_dim"] = -1
        refused("must list 1 or more channel counts") { _ = try UNetConfiguration(json: minimum, file: Self.file) }
        #expect(try UNetConfiguration(json: Self.unetBlocks, file: Self.file).timeEmbedDimension == 128)
    }

    @Test func transformerWidthsThatOverflowAreRefused() throws {
        let sd3 = #"{"num_attention_heads": 1099511627776, "attention_head_dim": 1099511627776, "caption_projection_dim": 64, "pos_embed_max_size": 8}"#
        let decodedSD3 = try JSONDecoder().decode(SD3TransformerConfiguration.self, from: Data(sd3.utf8))
        refused("num_attention_heads 1099511627776 x attention_head_dim 1099511627776 is too large") { try decodedSD3.validate(file: Self.file) }
        let dit = #"{"num_attention_heads": 1099511627776, "attention_head_dim": 1099511627776, "num_embeds_ada_norm": 1000, "sample_size": 8, "patch_size": 2}"#
        let decodedDiT = try JSONDecoder().decode(DiTConfiguration.self, from: Data(dit.utf8))
        refused("num_attention_heads 1099511627776 x attention_head_dim 1099511627776 is too large") { try decodedDiT.validate(file: Self.file) }
        refused("axes_dims_rope [9223372036854775806, 2] sums past the largest integer") {
            _ = try FluxTransformerConfiguration(json: ["axes_dims_rope": [Int.max - 1, 2]], file: Self.file)
        }
        refused("is too large") {
            _ = try FluxTransformerConfiguration(json: ["num_attention_heads": Int.max / 2, "attention_head_dim": 8, "axes_dims_rope": [2, 2, 4]], file: Self.file)
        }
    }
}
