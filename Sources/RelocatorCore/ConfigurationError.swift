/// A configuration value that cannot be used. Its description is one line that names the
/// setting and what was expected; it never repeats a password.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The environment variable or flag that was wrong, e.g. `REDIS_URL`.
    public var setting: String
    /// What was expected instead.
    public var expected: String

    public init(setting: String, expected: String) {
        self.setting = setting
        self.expected = expected
    }

    public var description: String { "\(setting): \(expected)" }
}
