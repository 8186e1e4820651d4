import Foundation
import Kiln

/// A LoRA `.safetensors` file: its tensors grouped into modules (kohya, LyCORIS, PEFT with the
/// adapter metadata, XLabs), each module's change shape, the modules placed on the built-in
/// model's U-Net and text encoder as a request with `<lora:...>` places them, the deltas of the
/// placed ones, and A1111's hash of the file.
enum LoRATarget {
    static func run(_ data: Data) {
        let folder = ScratchFolder.write([(path: "fuzz.safetensors", data: data)])
        guard let file = try? LoRAFile(url: folder.appendingPathComponent("fuzz.safetensors")) else { return }
        _ = try? file.addnetHash()
        for module in file.modules { _ = try? module.deltaShape(in: file.tensors) }
        guard let changes = try? file.changes(on: DefaultModelParts.loraComponents) else { return }
        for change in changes { _ = try? change.module.delta(in: file.tensors) }
    }
}
