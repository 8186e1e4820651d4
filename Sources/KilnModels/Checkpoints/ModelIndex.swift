import Foundation

/// A diffusers folder's `model_index.json`: the pipeline class and its components, as
/// `save_pretrained` writes them (`"unet": ["diffusers", "UNet2DConditionModel"]`, a missing
/// component as `[null, null]`), plus the pipeline's own settings
/// (`force_zeros_for_empty_prompt`, `requires_safety_checker`, ...). The one reader of that file.
public struct ModelIndex: Sendable {
    /// The file it was read from.
    public let url: URL
    /// `_class_name`, e.g. `StableDiffusionXLPipeline`.
    public let className: String
    /// Each component's class (`UNet2DConditionModel`), nil for a component saved as null.
    public let components: [String: String?]
    /// Settings that are true or false (`force_zeros_for_empty_prompt`).
    public let flags: [String: Bool]

    /// Reads `folder/model_index.json`; nil when the folder has none.
    public static func load(folder: URL) throws -> ModelIndex? {
        let url = folder.appendingPathComponent("model_index.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        } catch {
            throw ConfigurationError(file: url.path, message: "not readable JSON: \(error.localizedDescription)")
        }
        guard let json = object as? [String: Any] else { throw ConfigurationError(file: url.path, message: "not a JSON object") }
        guard let className = json["_class_name"] as? String else {
            throw ConfigurationError(file: url.path, message: "_class_name is missing or not a string")
        }
        var components: [String: String?] = [:]
        var flags: [String: Bool] = [:]
        for (key, value) in json where !key.hasPrefix("_") {
            if let pair = value as? [Any], pair.count == 2 {
                components[key] = .some(pair[1] as? String)
            } else if let flag = value as? Bool {
                flags[key] = flag
            }
        }
        return ModelIndex(url: url, className: className, components: components, flags: flags)
    }

    /// True when the index names `component` with a class (not null, not absent).
    public func has(_ component: String) -> Bool { (components[component] ?? nil) != nil }
}
