import Foundation
import RelocatorCore

extension Worker {
    /// The two hosts of a pull whose source was located among `peers`: the source's worker (its
    /// id and the address it was reached at) and this worker's host.
    func route(of source: PulledSource, among peers: [TransferPeer]) -> PullRoute {
        let worker = peers.first { $0.address == source.client.address }?.worker ?? "unknown"
        return PullRoute(sourceWorker: worker, sourceAddress: source.client.address.description, targetHost: Self.hostName)
    }

    /// The two hosts of a pull that asks `peer` first (recorded before it is asked).
    func route(to peer: TransferPeer) -> PullRoute {
        PullRoute(sourceWorker: peer.worker, sourceAddress: peer.address.description, targetHost: Self.hostName)
    }

    /// This host's name, read once (each pull records it).
    static let hostName = ProcessInfo.processInfo.hostName
}
