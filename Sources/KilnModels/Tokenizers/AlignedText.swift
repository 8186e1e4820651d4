/// Text on its way through a tokenizer's normalizer and pre-tokenizer, with what Hugging Face
/// tokenizers' offsets would say about where it starts in the input.
///
/// tokenizers records, for every normalized byte, the span of input it came from, and the
/// Metaspace pre-tokenizer's `first` prepend scheme asks whether a piece's span begins at input
/// offset 0. Kiln keeps only what that question needs:
///
/// - ``originStartsInput``: whether the input stretch this text was cut from (its "origin")
///   begins the input;
/// - ``scalarsAtOrigin``: how many leading scalars tokenizers aligns with that stretch's first
///   character (a decomposed or prepended first character gives several; removing it gives none).
///
/// Normalizers update the count as tokenizers updates its alignments; a piece cut out of the text
/// starts the input when its first scalar is among those counted.
public struct AlignedText: Sendable, Equatable {
    /// The text, as Unicode scalars.
    public var scalars: [Unicode.Scalar]
    /// Whether the input stretch this text comes from begins the input.
    public var originStartsInput: Bool
    /// How many leading scalars are aligned with the first character of that stretch.
    public var scalarsAtOrigin: Int

    /// Text with explicit alignment.
    public init(scalars: [Unicode.Scalar], originStartsInput: Bool, scalarsAtOrigin: Int) {
        self.scalars = scalars
        self.originStartsInput = originStartsInput
        self.scalarsAtOrigin = min(max(scalarsAtOrigin, 0), scalars.count)
    }

    /// A stretch of input before normalization: each character is aligned with itself, so only
    /// the first one is at the origin.
    public init(_ text: String, startsInput: Bool = true) {
        let scalars = Array(text.unicodeScalars)
        self.init(scalars: scalars, originStartsInput: startsInput, scalarsAtOrigin: 1)
    }

    /// The text as a `String`.
    public var text: String { String(String.UnicodeScalarView(scalars)) }

    /// Whether the text is empty.
    public var isEmpty: Bool { scalars.isEmpty }

    /// Whether the first scalar sits at input offset 0.
    public var startsInput: Bool { originStartsInput && scalarsAtOrigin > 0 }

    /// The scalars in `range` as a piece of their own, as tokenizers' `slice` makes one: its
    /// origin is the span of its first scalar.
    func slice(_ range: Range<Int>) -> AlignedText {
        let scalars = Array(self.scalars[range])
        if range.lowerBound < scalarsAtOrigin {
            return AlignedText(
                scalars: scalars, originStartsInput: originStartsInput,
                scalarsAtOrigin: min(scalarsAtOrigin, range.upperBound) - range.lowerBound)
        }
        // The first scalar starts its own origin; which later scalars share its span is not
        // tracked (only the input start matters, and this piece is not at it).
        return AlignedText(scalars: scalars, originStartsInput: false, scalarsAtOrigin: 1)
    }

    /// Replaces the text by `changes`, tokenizers' `transform`: each new scalar with `change`
    /// 0 replaces the next old scalar, with a negative change also removes that many old scalars
    /// after it, and with a positive change is inserted, sharing the alignment of the old scalar
    /// before the current position. `initialOffset` old scalars are removed first.
    mutating func transform(_ changes: [(scalar: Unicode.Scalar, change: Int)], initialOffset: Int = 0) {
        var position = initialOffset
        var atOrigin: [Bool] = []
        atOrigin.reserveCapacity(changes.count)
        for (_, change) in changes {
            if change > 0 {
                atOrigin.append(position == 0 || position - 1 < scalarsAtOrigin)
            } else {
                atOrigin.append(position < scalarsAtOrigin)
                position += 1 - change
            }
        }
        scalars = changes.map(\.scalar)
        scalarsAtOrigin = atOrigin.prefix { $0 }.count
    }

    /// Keeps the scalars `keep` accepts, each mapped by `map`, as tokenizers' `filter` then
    /// `map` do: removed leading scalars take their alignment with them.
    mutating func filter(
        _ keep: (Unicode.Scalar) -> Bool, map: (Unicode.Scalar) -> Unicode.Scalar = { $0 }
    ) {
        var kept: [Unicode.Scalar] = []
        kept.reserveCapacity(scalars.count)
        var keptAtOrigin = 0
        for (index, scalar) in scalars.enumerated() where keep(scalar) {
            if index < scalarsAtOrigin { keptAtOrigin += 1 }
            kept.append(map(scalar))
        }
        scalars = kept
        scalarsAtOrigin = keptAtOrigin
    }

    /// Replaces each scalar by zero or more scalars; every new scalar keeps the alignment of the
    /// scalar it came from (tokenizers' one-to-many maps: lower-casing, byte-level, CJK spacing).
    mutating func expand(_ replacement: (Unicode.Scalar) -> [Unicode.Scalar]) {
        var expanded: [Unicode.Scalar] = []
        expanded.reserveCapacity(scalars.count)
        var expandedAtOrigin = 0
        for (index, scalar) in scalars.enumerated() {
            let pieces = replacement(scalar)
            expanded += pieces
            if index < scalarsAtOrigin { expandedAtOrigin = expanded.count }
        }
        scalars = expanded
        scalarsAtOrigin = expandedAtOrigin
    }
}
