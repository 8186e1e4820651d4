import Foundation
import Kiln

/// A `.safetensors` file: header length, JSON header, tensor table with its offset checks, then
/// every tensor read back as Kiln reads weights.
enum SafeTensorsTarget {
    static func run(_ data: Data) {
        guard let file = try? SafeTensorsFile(data: data, url: URL(fileURLWithPath: "/fuzz/model.safetensors")) else { return }
        _ = file.metadata.count
        for name in file.names {
            _ = try? file.info(name)
            _ = try? file.tensor(name)
        }
    }
}
