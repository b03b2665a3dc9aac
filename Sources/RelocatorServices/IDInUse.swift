import Foundation
import RelocatorCore

/// A worker or committer refused its start: another live process beats under its id. Workers and
/// committers share one namespace of ids (`worker:<id>` heartbeats, `processing:<id>` and
/// `committing:<id>` lists): a committer that took a worker's id would hand that worker's moves in
/// flight back to the queue, unfenced, as it stops.
public struct IDInUse: Error, CustomStringConvertible {
    public let id: String
    /// What refused its start.
    public let starting: Heartbeat.Kind
    public let heartbeat: Heartbeat

    public var description: String {
        let host = heartbeat.host.map { " on \($0)" } ?? ""
        let pid = heartbeat.pid.map { " (pid \($0))" } ?? ""
        return "\(starting.rawValue) id '\(id)' is in use: a \(heartbeat.kind.rawValue)\(host)\(pid) renewed its heartbeat after this \(starting.rawValue) started; "
            + "give this one another --id, or stop that one first"
    }

    /// Another process that beats under `id`. A process may reuse the id of its previous run,
    /// whose heartbeat may not have expired yet (a crash, `kill -9`): that is not refused. What is:
    /// a heartbeat renewed after this one started. So a heartbeat under the id is watched until it
    /// is renewed (refused), expires or is not renewed for a time to live (taken over) — at once
    /// when it names a process of this host that no longer exists. Nil when the id is free (or
    /// `stopping` is raised meanwhile).
    static func find(_ id: String, starting: Heartbeat.Kind, heartbeatTTL: Duration, stopping: StopSignal,
                     _ control: any JobQueueSession) throws -> IDInUse? {
        func beat() throws -> Heartbeat? { try control.heartbeats().first { $0.id == id } }
        guard let first = try beat() else { return nil }
        let host = ProcessInfo.processInfo.hostName
        if first.host == host, let pid = first.pid.flatMap(Int32.init(exactly:)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
            return nil
        }
        let deadline = ContinuousClock.now + heartbeatTTL
        while ContinuousClock.now < deadline {
            if stopping.wait(for: .milliseconds(100)) { return nil }
            guard let now = try beat() else { return nil }
            if now.beatAt != first.beatAt { return IDInUse(id: id, starting: starting, heartbeat: now) }
        }
        return nil
    }
}
