import ArgumentParser
import Foundation

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Latent-diffusion models on any Vulkan GPU.",
        subcommands: [
            DevicesCommand.self, VerifyCommand.self, BenchCommand.self, GenerateCommand.self, RenderCommand.self, ServeCommand.self,
            PreferenceCommand.self, ModelsCommand.self,
            InfoCommand.self,
        ])

    /// Every kind of bad input exits with 2, command-line usage errors included (ArgumentParser
    /// would use 64), so scripts tell "fix your arguments" (2) from "it failed while working" (1).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options shared by commands that run on a device.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, help: "Device index, UUID or name substring (default: KILN_DEVICE, else the most capable device).")
    var device: String?
}

/// JSON output for every command: sorted keys, infinities spelled out rather than an encoding failure.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Writes to standard error (progress, warnings), keeping stdout for results.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
