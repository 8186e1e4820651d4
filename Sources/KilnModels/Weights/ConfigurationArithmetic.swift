/// Arithmetic on sizes read from a config file, which may be anything: an overflow is the file's
/// error, named by its fields, never a trap.
extension ConfigurationError {
    /// `first.value * second.value`, or an error naming both fields when it overflows `Int`.
    static func product(_ first: (name: String, value: Int), _ second: (name: String, value: Int), file: String) throws -> Int {
        let (product, overflow) = first.value.multipliedReportingOverflow(by: second.value)
        guard !overflow else {
            throw ConfigurationError(file: file, message: "\(first.name) \(first.value) x \(second.name) \(second.value) is too large")
        }
        return product
    }

    /// The sum of a list field, or an error naming it when the sum overflows `Int`.
    static func sum(_ name: String, _ values: [Int], file: String) throws -> Int {
        try values.reduce(0) { total, value in
            let (sum, overflow) = total.addingReportingOverflow(value)
            guard !overflow else { throw ConfigurationError(file: file, message: "\(name) \(values) sums past the largest integer") }
            return sum
        }
    }
}
