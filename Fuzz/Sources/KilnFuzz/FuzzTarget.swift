import Foundation

/// One parser under fuzzing: its name (KILN_FUZZ_TARGET, the folder of its corpus
/// Fuzz/Corpus/<name>/ and its dictionary Fuzz/Dictionaries/<name>.dict) and what it does with
/// one input.
struct FuzzTarget: Sendable {
    let name: String
    let run: @Sendable (Data) -> Void

    /// Every target, in the order scripts/fuzz.sh runs them.
    static let all: [FuzzTarget] = [
        FuzzTarget(name: "safetensors", run: SafeTensorsTarget.run),
        FuzzTarget(name: "safetensors-index", run: SafeTensorsIndexTarget.run),
        FuzzTarget(name: "png", run: PNGTarget.run),
        FuzzTarget(name: "model-config", run: ModelConfigTarget.run),
        FuzzTarget(name: "scheduler-config", run: SchedulerConfigTarget.run),
        FuzzTarget(name: "clip-tokenizer", run: CLIPTokenizerTarget.run),
        FuzzTarget(name: "tokenizer-json", run: TokenizerJSONTarget.run),
        FuzzTarget(name: "sentencepiece", run: SentencePieceTarget.run),
        FuzzTarget(name: "lora", run: LoRATarget.run),
        FuzzTarget(name: "render-manifest", run: RenderManifestTarget.run),
        FuzzTarget(name: "a1111-request", run: A1111RequestTarget.run),
        FuzzTarget(name: "openai-request", run: OpenAIRequestTarget.run),
        FuzzTarget(name: "job-request", run: JobRequestTarget.run),
        FuzzTarget(name: "a1111-prompt", run: A1111PromptTarget.run),
    ]
}
