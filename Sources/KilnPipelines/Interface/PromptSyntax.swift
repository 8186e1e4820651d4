/// How a pipeline reads prompt text.
public enum PromptSyntax: String, Sendable, Equatable, CaseIterable, Codable {
    /// As diffusers takes prompts: every character is text, 77 tokens at most.
    case literal
    /// AUTOMATIC1111's: `(word)` x1.1, `((word))`, `(word:1.3)`, `[word]` /1.1, `\\(` escapes,
    /// `BREAK`, and prompts beyond 75 tokens in 77-token chunks (see `A1111Prompt`).
    case a1111

    /// `literal` or `a1111`, as the command line and the server's settings write it.
    public init(parsing text: String) throws {
        guard let syntax = PromptSyntax(rawValue: text.lowercased()) else {
            throw PipelineError.invalidRequest("prompt syntax '\(text)': use literal or a1111")
        }
        self = syntax
    }
}
