/// Where tokenizers aligns the output of a normalization form with its input, as far as
/// ``AlignedText`` needs it: how many leading output scalars sit at the origin.
///
/// tokenizers normalizes with `unicode-normalization-alignments`, which lists each output scalar
/// with a change: a scalar's first decomposed part 0, its other parts +1; canonical reordering
/// moves the entries with their changes; a composition gives the composite the sum of its parts'
/// changes minus one. tokenizers then aligns the list positionally (see
/// ``AlignedText/transform(_:initialOffset:)``). This replays that on the leading stretch of the
/// text; the output scalars themselves come from ``UnicodeNormalization``.
enum NormalizationAlignment {
    /// One output scalar with its combining class and change.
    private struct Entry {
        var scalar: Unicode.Scalar
        var combiningClass: UInt8
        var change: Int
    }

    /// The number of leading scalars of `form`'s output aligned with the origin, given that the
    /// first `scalarsAtOrigin` input scalars are.
    static func scalarsAtOrigin(
        afterNormalizing scalars: [Unicode.Scalar], scalarsAtOrigin: Int, form: UnicodeNormalization.Form,
        version: Unicode.Version
    ) -> Int {
        guard scalarsAtOrigin > 0 else { return 0 }
        // An ASCII scalar is a starter that nothing reorders across or composes with, so the
        // stretch before the first one after the origin settles the alignment there.
        var end = min(scalarsAtOrigin, scalars.count)
        while end < scalars.count, !scalars[end].isASCII { end += 1 }
        var entries: [Entry] = []
        for scalar in scalars[..<end] {
            let parts = decomposition(of: scalar, compatibility: form.isCompatibility, version: version)
            for (index, part) in parts.enumerated() {
                entries.append(Entry(
                    scalar: part, combiningClass: combiningClass(of: part, version: version), change: index == 0 ? 0 : 1))
            }
        }
        putInCanonicalOrder(&entries)
        if form.composes { entries = composed(entries, version: version) }
        // tokenizers' positional alignment.
        var position = 0
        var count = 0
        for entry in entries {
            let atOrigin: Bool
            if entry.change > 0 {
                atOrigin = position == 0 || position - 1 < scalarsAtOrigin
            } else {
                atOrigin = position < scalarsAtOrigin
                position += 1 - entry.change
            }
            guard atOrigin else { break }
            count += 1
        }
        return count
    }

    private static func decomposition(
        of scalar: Unicode.Scalar, compatibility: Bool, version: Unicode.Version
    ) -> [Unicode.Scalar] {
        // Nothing below U+00A0 decomposes, and the tables know nothing newer than `version`.
        if scalar.value < 0xA0 || UnicodeVersionCheck.isNewer(scalar, than: version) { return [scalar] }
        let text = String(scalar)
        let decomposed = compatibility
            ? text.decomposedStringWithCompatibilityMapping : text.decomposedStringWithCanonicalMapping
        return Array(decomposed.unicodeScalars)
    }

    private static func combiningClass(of scalar: Unicode.Scalar, version: Unicode.Version) -> UInt8 {
        UnicodeVersionCheck.isNewer(scalar, than: version) ? 0 : scalar.properties.canonicalCombiningClass.rawValue
    }

    /// Stable sort of every run of non-starters by combining class, changes moving along.
    private static func putInCanonicalOrder(_ entries: inout [Entry]) {
        var start = 0
        while start < entries.count {
            guard entries[start].combiningClass != 0 else {
                start += 1
                continue
            }
            var end = start + 1
            while end < entries.count, entries[end].combiningClass != 0 { end += 1 }
            let sorted = entries[start..<end].enumerated()
                .sorted { ($0.element.combiningClass, $0.offset) < ($1.element.combiningClass, $1.offset) }
                .map(\.element)
            entries.replaceSubrange(start..<end, with: sorted)
            start = end
        }
    }

    /// Canonical composition of decomposed, ordered entries, in the order and with the changes
    /// the library gives: each starter ("composee") absorbs the unblocked scalars that compose
    /// with it and is emitted before the marks left after it.
    private static func composed(_ entries: [Entry], version: Unicode.Version) -> [Entry] {
        var output: [Entry] = []
        var composee: Entry?
        var pending: [Entry] = []
        var lastClass: UInt8?
        for entry in entries {
            guard var current = composee else {
                if entry.combiningClass != 0 {
                    output.append(entry)
                } else {
                    composee = entry
                }
                continue
            }
            let blocked = lastClass.map { $0 >= entry.combiningClass } ?? false
            if !blocked, let composite = composition(of: current.scalar, with: entry.scalar, version: version) {
                current.scalar = composite
                current.change += entry.change - 1
                composee = current
                continue
            }
            if entry.combiningClass == 0 {
                output.append(current)
                output += pending
                pending.removeAll()
                composee = entry
                lastClass = nil
            } else {
                pending.append(entry)
                lastClass = entry.combiningClass
            }
        }
        if let composee { output.append(composee) }
        return output + pending
    }

    /// The primary composite of two scalars, if any.
    private static func composition(
        of first: Unicode.Scalar, with second: Unicode.Scalar, version: Unicode.Version
    ) -> Unicode.Scalar? {
        if second.isASCII || UnicodeVersionCheck.isNewer(first, than: version)
            || UnicodeVersionCheck.isNewer(second, than: version) {
            return nil
        }
        let pair = String(String.UnicodeScalarView([first, second]))
        let composed = String(decoding: pair._nfcCodeUnits, as: UTF8.self).unicodeScalars
        guard composed.count == 1, let composite = composed.first,
              !UnicodeVersionCheck.isNewer(composite, than: version) else { return nil }
        return composite
    }
}
