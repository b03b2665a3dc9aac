/// What the placement policy adds to a submission: counts decaying with a half-life (their scores
/// in the residents sets), and each level's minimum residency (a new job of a content that moved
/// more recently waits as `deferred`). `.none` is the seed's behaviour.
public struct CountPolicy: Sendable, Equatable {
    public var halfLife: Duration?
    public var residencies: [String: Duration]

    public init(halfLife: Duration? = nil, residencies: [String: Duration] = [:]) {
        self.halfLife = halfLife
        self.residencies = residencies
    }

    public static let none = CountPolicy()
}
