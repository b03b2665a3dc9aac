import Foundation
import RelocatorCore
@testable import RelocatorServices
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The kept connections to transfer endpoints: one idle too long is closed whichever endpoint it
/// is to, so that a connection to a worker that restarted on another port, or left, does not stay
/// open for ever; one idle a short while stays.
@Suite struct TransferConnectionsTests {
    /// A connected pair of sockets: the one kept, and the other end, which sees it closed.
    static func pair() throws -> (kept: Int32, other: Int32) {
        var fds: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    /// True when the other end reads the end of the stream (its kept end was closed); false while
    /// the kept end is open.
    static func closed(_ other: Int32) -> Bool {
        var byte: UInt8 = 0
        return recv(other, &byte, 1, Int32(MSG_DONTWAIT)) == 0
    }

    @Test func aConnectionIdleTooLongIsClosedWhenAnotherEndpointsIsKept() throws {
        let connections = TransferConnections(keepIdle: .zero)
        let left = try TransferAddress(parsing: "127.0.0.1:7401"), restarted = try TransferAddress(parsing: "127.0.0.1:7402")
        let first = try Self.pair(), second = try Self.pair()
        defer { for fd in [first.other, second.other] { close(fd) } }
        connections.give(TransferSocket(fd: first.kept), left)
        #expect(!Self.closed(first.other))
        // Nothing is ever asked of the first endpoint again: the next answer kept closes its connection.
        connections.give(TransferSocket(fd: second.kept), restarted)
        #expect(Self.closed(first.other), "the connection to the endpoint asked nothing since is closed")
        #expect(connections.count == 1)
        // And the maintenance's sweep closes the last one, with no answer kept after it.
        connections.sweep()
        #expect(Self.closed(second.other))
        #expect(connections.count == 0)
    }

    @Test func aConnectionIdleAShortWhileStaysWhateverElseIsKept() throws {
        let connections = TransferConnections()
        let one = try TransferAddress(parsing: "127.0.0.1:7401"), other = try TransferAddress(parsing: "127.0.0.1:7402")
        let first = try Self.pair(), second = try Self.pair()
        defer {
            for fd in [first.other, second.other] { close(fd) }
            for address in [one, other] { while let socket = connections.take(address) { socket.close() } }
        }
        let kept = TransferSocket(fd: first.kept)
        connections.give(kept, one)
        connections.give(TransferSocket(fd: second.kept), other)
        connections.sweep()
        #expect(connections.count == 2)
        #expect(!Self.closed(first.other) && !Self.closed(second.other))
        #expect(connections.take(one) === kept)
        kept.close()
    }

    /// A plain connection dropped without `close()` is closed with its last reference.
    @Test func aPlainConnectionDroppedWithoutClosingIsClosed() throws {
        let pair = try Self.pair()
        defer { close(pair.other) }
        do {
            let dropped = TransferSocket(fd: pair.kept)
            #expect(!dropped.isTLS)
        }
        #expect(Self.closed(pair.other), "the dropped socket's descriptor is closed")
    }
}
