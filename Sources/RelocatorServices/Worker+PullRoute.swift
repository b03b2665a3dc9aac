import Foundation
import RelocatorCore

extension Worker {
    /// The two hosts of a pull whose source was located among `peers`: the source's worker (its
    /// id and the address it was reached at) and this worker's host.
    func route(of source: PulledSource, among peers: [TransferPeer]) -> PullRoute {
        let worker = peers.first { $0.address == source.client.address }?.worker ?? "unknown"
        return PullRoute(sourceWorker: worker, sourceAddress: source.client.address.description,
                         targetHost: ProcessInfo.processInfo.hostName)
    }
}
