import Foundation

/// The level table and the level policies as the committer read them from SQL, published in Redis
/// (`placement`) for the workers, which have no database. A worker without a snapshot yet behaves
/// as the seed does (no watermark, no limit, its own order).
public struct PlacementSnapshot: Codable, Sendable, Equatable {
    public var levels: [LevelRange]
    public var policies: [String: LevelPolicy]
    /// The half-life of hit counters (ms), when counts decay.
    public var halfLifeMilliseconds: Int64?
    public var publishedAt: Int64

    public init(levels: [LevelRange], policies: [String: LevelPolicy], halfLife: Duration?, publishedAt: Int64 = WallClock.milliseconds()) {
        self.levels = levels
        self.policies = policies
        self.halfLifeMilliseconds = halfLife?.milliseconds
        self.publishedAt = publishedAt
    }

    enum CodingKeys: String, CodingKey {
        case levels, policies
        case halfLifeMilliseconds = "half_life_ms"
        case publishedAt = "published_at"
    }

    public var placement: Placement { Placement(table: LevelTable(levels), policies: policies) }

    /// True when any level has a policy (else every rule is the seed's).
    public var hasPolicies: Bool { policies.values.contains { $0 != LevelPolicy() } }

    /// What a submission or a commit needs of it.
    public var countPolicy: CountPolicy {
        var residencies: [String: Duration] = [:]
        for (level, policy) in policies { if let seconds = policy.minResidency, seconds > 0 { residencies[level] = .seconds(seconds) } }
        return CountPolicy(halfLife: halfLifeMilliseconds.map { .milliseconds($0) }, residencies: residencies)
    }

    public func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    public init(decoding text: String) throws {
        self = try JSONDecoder().decode(PlacementSnapshot.self, from: Data(text.utf8))
    }
}
