import Foundation

/// Reads a JSON fixture written by Tests/Fixtures/generate_sampling_fixtures.py.
func loadFixture<Value: Decodable>(_ name: String, as type: Value.Type) throws -> Value {
    guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
        throw FixtureError.missing(name)
    }
    return try JSONDecoder().decode(Value.self, from: Data(contentsOf: url))
}

enum FixtureError: Error { case missing(String) }

/// The largest absolute difference divided by the largest reference magnitude (at least 1e-30).
func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
    guard actual.count == expected.count else { return .infinity }
    let scale = max(expected.map { abs($0) }.max() ?? 0, 1e-30)
    var worst: Float = 0
    for (a, e) in zip(actual, expected) { worst = max(worst, abs(a - e)) }
    return worst / scale
}
