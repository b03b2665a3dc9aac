import RelocatorCore

/// How the scripts take a count policy (`enqueue.lua`, `committed.lua`).
extension CountPolicy {
    var halfLifeArgument: Int64 { halfLife?.milliseconds ?? 0 }
    var residencyArgument: String {
        residencies.filter { $0.value > .zero }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.milliseconds)" }.joined(separator: ",")
    }
}
