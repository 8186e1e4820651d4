/// A problem in an input file that front ends read line by line (render manifests, preference
/// pairs), named by file, line and field: `jobs.jsonl: line 12: field 'seed': expected an integer`.
public struct InputFileError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let line: Int?
    public let field: String?
    public let message: String

    public init(file: String, line: Int?, field: String?, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        [file, line.map { "line \($0)" }, field.map { "field '\($0)'" }, message].compactMap { $0 }.joined(separator: ": ")
    }
}
