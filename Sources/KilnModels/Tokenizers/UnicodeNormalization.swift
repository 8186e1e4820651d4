import Foundation

/// The four Unicode normalization forms, computed scalar-exactly, optionally as an older Unicode
/// version's tables define them.
///
/// Decomposition comes from Foundation, then combining marks are put in canonical order here and
/// composition is the standard library's. Neither platform normalizer is used alone: on Linux,
/// Foundation leaves some compatibility decompositions out of canonical order and fails to compose
/// some Hangul LV + T pairs, and both skip reordering after the three Tibetan vowel signs whose
/// decomposition starts with a non-starter (U+0F73, U+0F75, U+0F81).
///
/// Reference: Unicode Standard Annex #15, "Unicode Normalization Forms"
/// (https://unicode.org/reports/tr15/).
enum UnicodeNormalization {
    /// A normalization form.
    enum Form: Sendable {
        /// Canonical decomposition, then canonical composition.
        case nfc
        /// Canonical decomposition.
        case nfd
        /// Compatibility decomposition, then canonical composition.
        case nfkc
        /// Compatibility decomposition.
        case nfkd

        var isCompatibility: Bool { self == .nfkc || self == .nfkd }
        var composes: Bool { self == .nfc || self == .nfkc }
    }

    /// `text` in `form`.
    ///
    /// With `version`, scalars assigned after it stay as they are and act as starters nothing
    /// composes with or reorders across: that is how a normalizer built on `version`'s tables
    /// treats them (it knows no decomposition for them and gives them combining class 0).
    static func normalize(_ text: String, form: Form, version: Unicode.Version? = nil) -> String {
        // ASCII is invariant under every form.
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        guard let version else { return normalizeKnown(text, form: form) }
        var output = String.UnicodeScalarView()
        var segment = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if UnicodeVersionCheck.isNewer(scalar, than: version) {
                output.append(contentsOf: normalizeKnown(String(segment), form: form).unicodeScalars)
                segment.removeAll()
                output.append(scalar)
            } else {
                segment.append(scalar)
            }
        }
        output.append(contentsOf: normalizeKnown(String(segment), form: form).unicodeScalars)
        return String(output)
    }

    /// `text` in `form` with the platform's own (newest) Unicode tables.
    private static func normalizeKnown(_ text: String, form: Form) -> String {
        guard !text.isEmpty else { return text }
        let decomposed = form.isCompatibility
            ? text.decomposedStringWithCompatibilityMapping : text.decomposedStringWithCanonicalMapping
        var scalars = Array(decomposed.unicodeScalars)
        putInCanonicalOrder(&scalars)
        let ordered = String(String.UnicodeScalarView(scalars))
        guard form.composes else { return ordered }
        // The input is fully decomposed and ordered, so the standard library only composes.
        return String(decoding: ordered._nfcCodeUnits, as: UTF8.self)
    }

    /// The canonical ordering algorithm: every run of non-starters is sorted, stably, by
    /// canonical combining class.
    static func putInCanonicalOrder(_ scalars: inout [Unicode.Scalar]) {
        var runStart = 0
        while runStart < scalars.count {
            guard combiningClass(scalars[runStart]) != 0 else {
                runStart += 1
                continue
            }
            var runEnd = runStart + 1
            while runEnd < scalars.count, combiningClass(scalars[runEnd]) != 0 {
                runEnd += 1
            }
            if runEnd - runStart > 1 {
                // Stable: enumerate, sort by (class, position).
                let sorted = scalars[runStart..<runEnd].enumerated()
                    .sorted { (combiningClass($0.element), $0.offset) < (combiningClass($1.element), $1.offset) }
                    .map(\.element)
                scalars.replaceSubrange(runStart..<runEnd, with: sorted)
            }
            runStart = runEnd
        }
    }

    private static func combiningClass(_ scalar: Unicode.Scalar) -> UInt8 {
        scalar.properties.canonicalCombiningClass.rawValue
    }
}

/// Whether a scalar was assigned after a given Unicode version, for reproducing libraries whose
/// character tables are older than the platform's.
enum UnicodeVersionCheck {
    /// True when `scalar` is assigned on this platform but was not yet in `version`.
    static func isNewer(_ scalar: Unicode.Scalar, than version: Unicode.Version) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return (age.major, age.minor) > (version.major, version.minor)
    }
}
