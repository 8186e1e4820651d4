import KilnGraph

/// Which op kinds the op-case table must cover: every `Operation.Kind` but the few listed here, each
/// with the reason it has no case of its own. Tests derive coverage from `Operation.Kind.allCases`,
/// so a new op without a case fails them.
public enum OperationCoverage {
    /// Kinds that cannot be a case's subject, and why.
    public static let kindsWithoutCases: [Operation.Kind: String] = [
        .input: "the per-run data every case is fed through; no kernel of its own",
        .constant: "data fixed when a graph is prepared (weights); the table feeds everything as per-run inputs, and the model tests run "
            + "their weights as constants; no kernel of its own",
        .reshape: "a view: no data moves and no kernel runs (cases such as reshape_then_permute and conv2d_resnet_then_adds read through one)",
    ]

    /// Kinds the table must give at least one case.
    public static var kindsNeedingCases: [Operation.Kind] {
        Operation.Kind.allCases.filter { kindsWithoutCases[$0] == nil }
    }
}
