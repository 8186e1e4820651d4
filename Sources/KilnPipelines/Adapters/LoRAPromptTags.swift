import Foundation

/// AUTOMATIC1111's LoRA tags in a prompt, `<lora:name>`, `<lora:name:weight>` and
/// `<lora:name:te_weight:unet_weight>` (also `te=`, `unet=` and LyCORIS's `<lyco:...>`), taken
/// out of the prompt and resolved to files in a LoRA folder, as A1111 and `kiln serve` read them.
///
/// ```swift
/// let (prompt, loras) = try LoRAPromptTags.requests(from: "a castle <lora:ink:0.7>", folder: loraFolder)
/// // prompt "a castle ", loras [ink.safetensors at 0.7]
/// request.options.loras = loras
/// ```
public enum LoRAPromptTags {
    /// One tag: the LoRA's name and its multipliers (the text encoders' defaults to the U-Net's).
    public struct Tag: Sendable, Equatable {
        public var name: String
        public var weight: Float
        public var textEncoderWeight: Float?

        public init(name: String, weight: Float = 1, textEncoderWeight: Float? = nil) {
            self.name = name
            self.weight = weight
            self.textEncoderWeight = textEncoderWeight
        }
    }

    /// `prompt` without its LoRA tags, and the tags in order. A tag whose weights are not numbers
    /// is an error naming it.
    public static func extract(from prompt: String) throws -> (prompt: String, tags: [Tag]) {
        var text = "", tags: [Tag] = []
        var rest = Substring(prompt)
        while let open = rest.range(of: "<") {
            text += rest[..<open.lowerBound]
            let after = rest[open.upperBound...]
            guard let close = after.firstIndex(of: ">") else {
                text += rest[open.lowerBound...]
                rest = ""
                break
            }
            let body = after[..<close]
            let items = body.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if let kind = items.first?.lowercased(), kind == "lora" || kind == "lyco", items.count >= 2, !items[1].isEmpty {
                tags.append(try tag(items.dropFirst(), text: String(rest[open.lowerBound...close])))
            } else {
                text += rest[open.lowerBound...close]
            }
            rest = after[after.index(after: close)...]
        }
        text += rest
        return (text, tags)
    }

    /// A1111's arguments: the name, then positional te and unet multipliers or `te=`, `unet=`
    /// (`dyn=` is LyCORIS's dynamic rank, which Kiln does not use; it is refused).
    private static func tag(_ items: ArraySlice<String>, text: String) throws -> Tag {
        var values = Array(items)
        let name = values.removeFirst()
        var positional: [Float] = [], named: [String: Float] = [:]
        for item in values {
            if let equals = item.firstIndex(of: "=") {
                let key = item[..<equals].lowercased()
                guard key == "te" || key == "unet", let value = Float(item[item.index(after: equals)...]), value.isFinite else {
                    throw PipelineError.invalidRequest("LoRA tag \(text): '\(item)' is not te=NUMBER or unet=NUMBER")
                }
                named[key] = value
            } else {
                guard let value = Float(item), value.isFinite else { throw PipelineError.invalidRequest("LoRA tag \(text): '\(item)' is not a number") }
                positional.append(value)
            }
        }
        guard positional.count <= 2 else { throw PipelineError.invalidRequest("LoRA tag \(text): at most two weights (text encoder, U-Net)") }
        let textEncoder = named["te"] ?? positional.first ?? 1
        let unet = named["unet"] ?? (positional.count > 1 ? positional[1] : textEncoder)
        return Tag(name: name, weight: unet, textEncoderWeight: textEncoder == unet ? nil : textEncoder)
    }

    /// The file `name` names in `folder`: `name.safetensors` there or in a subfolder (A1111
    /// searches the LoRA folder's tree), matched exactly, else ignoring case. Names may not
    /// leave the folder.
    public static func resolve(_ name: String, in folder: URL) throws -> URL {
        if name.contains("..") || name.hasPrefix("/") {
            throw PipelineError.invalidRequest("LoRA '\(name)': a name may not leave the LoRA folder")
        }
        let direct = folder.appendingPathComponent(name + ".safetensors")
        if FileManager.default.fileExists(atPath: direct.path) { return direct }
        var caseless: URL?
        let wanted = (name as NSString).lastPathComponent + ".safetensors"
        if let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) {
            for case let file as URL in files where file.pathExtension.lowercased() == "safetensors" {
                if file.lastPathComponent == wanted { return file }
                if caseless == nil, file.lastPathComponent.lowercased() == wanted.lowercased() { caseless = file }
            }
        }
        if let caseless { return caseless }
        throw PipelineError.invalidRequest("LoRA '\(name)': no \(name).safetensors in \(folder.path)")
    }

    /// `prompt` without its tags and the LoRAs they name, resolved in `folder`.
    public static func requests(from prompt: String, folder: URL) throws -> (prompt: String, loras: [LoRARequest]) {
        let (text, tags) = try extract(from: prompt)
        let loras = try tags.map { LoRARequest(url: try resolve($0.name, in: folder), weight: $0.weight, textEncoderWeight: $0.textEncoderWeight) }
        return (text, loras)
    }
}
