import FileMover
import Foundation
import RelocatorCore

/// What the workers of other hosts say of one content's file: the levels looked in (by a worker
/// that answered) and which of them hold it, and the levels nobody answered for, with why.
public struct RemoteLook: Sendable, Equatable {
    /// Level → size of the regular file there.
    public var found: [String: Int64] = [:]
    public var looked: Set<String> = []
    /// Level → why no worker answered for it (none live, unreachable, a refusal).
    public var unanswered: [String: String] = [:]

    public init(found: [String: Int64] = [:], looked: Set<String> = [], unanswered: [String: String] = [:]) {
        self.found = found
        self.looked = looked
        self.unanswered = unanswered
    }

    /// One line naming where the file was found, for a finding.
    func foundText(hosts: [String: String]) -> String {
        found.keys.sorted().map { "\($0) (\(hosts[$0] ?? "another host"), \(found[$0]!) bytes)" }.joined(separator: " and ")
    }
}

/// Asks other hosts' workers which of their levels hold a content's file (`HostInquiry`), for one
/// reconcile run: its token and secret, recorded in Redis (digest only) with each content asked
/// about, and the live workers that serve each level, read from their heartbeats.
final class PeerInquiry {
    let session: any JobQueueSession
    let signingKey: TransferSigningKey?
    /// The CAs a peer that speaks TLS is checked against (`reconcile --transfer-tls-ca`).
    let trust: TransferTLSTrust?
    let ttl: Duration
    let token: String
    private let secret = TransferSecret.random()
    private var beats: [Heartbeat] = []
    private var beatsRead: ContinuousClock.Instant?
    /// Level → the worker that last answered for it (for findings).
    private(set) var answeredBy: [String: String] = [:]
    /// Workers that could not be reached, with why, not asked again until then: a partitioned
    /// peer whose heartbeat still lives would otherwise cost its connect timeout per content.
    private var unreachable: [String: (reason: String, until: ContinuousClock.Instant)] = [:]

    init(session: any JobQueueSession, signingKey: TransferSigningKey?, trust: TransferTLSTrust? = nil, ttl: Duration) {
        self.session = session
        self.signingKey = signingKey
        self.trust = trust
        self.ttl = ttl
        // Hex only: it is part of a Redis key (`HostInquiry.isToken`).
        token = String(TransferSecret.random().text.prefix(32))
    }

    /// The live workers serving `level` (heartbeats read again at most every 10 s).
    func peers(serving level: String) throws -> [TransferPeer] {
        let now = ContinuousClock.now
        if beatsRead == nil || now - beatsRead! > .seconds(10) {
            beats = try session.heartbeats()
            beatsRead = now
        }
        return TransferPeer.serving(level, among: beats, excluding: "")
    }

    /// Asks about `cid`'s `filename` on `levels` (none of them this host's): each level's live
    /// workers, the most recently renewed first, until one answers; an answer covers every level
    /// its worker holds.
    func look(cid: Int64, filename: String, levels: [String]) throws -> RemoteLook {
        var look = RemoteLook()
        guard !levels.isEmpty else { return look }
        _ = try session.control(.inquire(token: token, key: secret.digest, cid: cid, filename: filename, ttl: ttl))
        var asked: Set<String> = []
        for level in levels where !look.looked.contains(level) {
            let peers = try peers(serving: level)
            guard !peers.isEmpty else {
                look.unanswered[level] = "no live worker serves it"
                continue
            }
            var reasons: [String] = []
            for peer in peers where !asked.contains(peer.worker) {
                asked.insert(peer.worker)
                if let known = unreachable[peer.worker], ContinuousClock.now < known.until {
                    reasons.append("worker \(peer.worker) at \(peer.address): \(known.reason)")
                    continue
                }
                switch ask(peer, cid: cid) {
                case .success(let answer):
                    for looked in answer.levels where !look.looked.contains(looked) {
                        look.looked.insert(looked)
                        look.unanswered[looked] = nil
                        answeredBy[looked] = "worker \(peer.worker) at \(peer.address)"
                    }
                    for found in answer.found { look.found[found.level] = found.size }
                case .failure(let reason):
                    if reason.unreachable { unreachable[peer.worker] = (reason.description, ContinuousClock.now + .seconds(30)) }
                    reasons.append("worker \(peer.worker) at \(peer.address): \(reason)")
                }
                if look.looked.contains(level) { break }
            }
            if !look.looked.contains(level) {
                look.unanswered[level] = reasons.isEmpty ? "its workers did not look in it" : reasons.joined(separator: "; ")
            }
        }
        return look
    }

    private func ask(_ peer: TransferPeer, cid: Int64) -> Result<HostInquiry.Answer, InquiryFailure> {
        let client = TransferClient(peer: peer, signingKey: signingKey, trust: trust)
        do {
            let answer = try client.send("GET", TransferProtocol.inquiryPath(cid),
                                         headers: [(TransferProtocol.inquiryHeader, token), (TransferProtocol.secretHeader, secret.text)],
                                         maximumBody: 1 << 20)
            guard answer.status == 200 else { return .failure(InquiryFailure(description: "\(answer.refusal ?? "HTTP \(answer.status)"): \(answer.message)")) }
            guard let decoded = try? JSONDecoder().decode(HostInquiry.Answer.self, from: Data(answer.body)), decoded.cid == cid,
                  decoded.found.allSatisfy({ $0.size >= 0 && decoded.levels.contains($0.level) }) else {
                return .failure(InquiryFailure(description: "an answer that is not one to this inquiry"))
            }
            return .success(decoded)
        } catch {
            // A peer refused over TLS is not asked again for a while either: a configuration to mend.
            return .failure(InquiryFailure(description: "\(error)", unreachable: error is TransferClient.Unreachable || error is TransferClient.TLSRefused))
        }
    }

    struct InquiryFailure: Error, CustomStringConvertible {
        let description: String
        /// The peer could not be reached, or not over TLS (not a refusal of its endpoint): it is not
        /// asked again for a while.
        var unreachable = false
    }
}
