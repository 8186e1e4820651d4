import Foundation

/// A LoRA a request applies: its file and multiplier (A1111's `<lora:name:weight>` weight;
/// kohya's and diffusers' `set_adapters` weight). The text encoders take
/// `textEncoderWeight` when it is set (A1111's `<lora:name:te:unet>`), else `weight`.
public struct LoRARequest: Sendable, Equatable, Hashable {
    public var url: URL
    public var weight: Float
    public var textEncoderWeight: Float?

    public init(url: URL, weight: Float = 1, textEncoderWeight: Float? = nil) {
        self.url = url
        self.weight = weight
        self.textEncoderWeight = textEncoderWeight
    }

    /// The file's name without `.safetensors`, as A1111 names a LoRA.
    public var name: String { url.deletingPathExtension().lastPathComponent }

    /// `PATH` or `PATH:WEIGHT` (the command line's `--lora`): the text after the last `:` is the
    /// weight when it is a number.
    public init(parsing text: String) throws {
        if let colon = text.lastIndex(of: ":"), let weight = Float(text[text.index(after: colon)...]), weight.isFinite {
            self.init(url: URL(fileURLWithPath: String(text[..<colon])), weight: weight)
        } else {
            self.init(url: URL(fileURLWithPath: text), weight: 1)
        }
        if url.path.isEmpty { throw PipelineError.invalidRequest("LoRA '\(text)': no file named") }
    }
}

/// A LoRA as a generation applied it, for the image's metadata.
public struct AppliedLoRA: Sendable, Equatable, Codable {
    public var name: String
    public var weight: Float
    public var textEncoderWeight: Float?
    /// A1111's hash of the file (SHA-256 of the tensors after the header); `Lora hashes` shows 12 digits.
    public var sha256: String

    public init(name: String, weight: Float, textEncoderWeight: Float? = nil, sha256: String) {
        self.name = name
        self.weight = weight
        self.textEncoderWeight = textEncoderWeight
        self.sha256 = sha256
    }

    enum CodingKeys: String, CodingKey {
        case name, weight, sha256
        case textEncoderWeight = "text_encoder_weight"
    }
}
