import ArgumentParser
import Foundation
import KilnImage

/// `kiln info`: a PNG's size, format and text chunks, with Kiln's `kiln` JSON chunk pretty-printed.
/// Bad input (missing file, not a PNG, corrupt data) prints one line on stderr and exits with code 2.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a PNG's size and text chunks (A1111 `parameters`, Kiln's `kiln` JSON).")

    @Argument(help: "A PNG file.")
    var image: String

    @Flag(help: "Print one JSON object: width, height, text (keyword: text) and kiln (the parsed `kiln` chunk or null).")
    var json = false

    func run() throws {
        let url = URL(fileURLWithPath: image)
        let header: PNGHeader
        let decoded: PNGImage
        do {
            header = try PNGHeader(contentsOf: url)
            decoded = try PNGImage(contentsOf: url)
        } catch {
            printError("kiln info: \(error)")
            throw ExitCode(2)
        }
        let kiln = decoded.text(forKeyword: "kiln").flatMap(Self.parsedJSON)
        if json {
            try printInfoJSON(decoded, kiln: kiln)
        } else {
            printInfo(decoded, header: header, kiln: kiln)
        }
    }

    private func printInfo(_ decoded: PNGImage, header: PNGHeader, kiln: Any?) {
        print(image)
        print("  size    \(decoded.width) x \(decoded.height)")
        print("  format  \(header)")
        print("  text    \(decoded.text.isEmpty ? "none" : decoded.text.count == 1 ? "1 chunk" : "\(decoded.text.count) chunks")")
        for chunk in decoded.text {
            print("")
            print("[\(chunk.keyword)] \(chunk.storage.rawValue)")
            if chunk.keyword == "kiln", let kiln, let pretty = Self.prettyJSON(kiln) {
                print(pretty)
            } else {
                if chunk.keyword == "kiln" { print("(not valid JSON)") }
                print(chunk.text)
            }
        }
    }

    private func printInfoJSON(_ decoded: PNGImage, kiln: Any?) throws {
        // Later chunks win over earlier ones with the same keyword, as in Pillow's Image.text.
        let text = decoded.text.reduce(into: [String: String]()) { $0[$1.keyword] = $1.text }
        let object: [String: Any] = ["width": decoded.width, "height": decoded.height, "text": text, "kiln": kiln ?? NSNull()]
        guard let pretty = Self.prettyJSON(object) else { throw ExitCode.failure }
        print(pretty)
    }

    /// Any JSON value, fragments included, or nil when the text is not JSON.
    private static func parsedJSON(_ text: String) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    private static func prettyJSON(_ value: Any) -> String? {
        guard let data = try? JSONSerialization.data(
            withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
