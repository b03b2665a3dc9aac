import RelocatorCore
import Testing

/// Which workers serve a level's files to others, from their heartbeats, and the addresses they
/// give: pure rules, no server.
@Suite struct TransferPeerTests {
    @Test(arguments: [("10.0.0.5:7400", "10.0.0.5", 7400), ("edge-1.example:1", "edge-1.example", 1),
                      ("[fd00::5]:65535", "fd00::5", 65535), ("localhost:7400", "localhost", 7400)])
    func anAddressIsAHostAndAPort(text: String, host: String, port: Int) throws {
        let address = try TransferAddress(parsing: text)
        #expect(address.host == host && address.port == port)
        #expect(address.description == text)
    }

    @Test(arguments: [("7400", "expected host:port"), (":7400", "the host '' is not"), ("a:", "the port must be 1 to 65535 (got '')"),
                      ("a:0", "(got '0')"), ("a:65536", "(got '65536')"), ("a:+80", "(got '+80')"), ("a:99999999999999999999", "(got '99999999999999999999')"),
                      ("fd00::5:80", "expected host:port"), ("[fd00::5]80", "expected host:port"), ("a b:80", "the host 'a b' is not"),
                      ("a/b:80", "the host 'a/b' is not"), ("a:８０", "(got '８０')")])
    func aBadAddressIsRefusedNamingWhatIsWrong(text: String, message: String) {
        #expect {
            try TransferAddress(parsing: text)
        } throws: { error in
            (error as? TransferAddress.Invalid)?.description.contains(message) == true
        }
    }

    @Test func portZeroIsAnyFreePortOnlyWhereAllowed() throws {
        #expect(try TransferAddress(parsing: "0.0.0.0:0", allowsAnyPort: true) == TransferAddress(host: "0.0.0.0", port: 0))
        #expect(throws: TransferAddress.Invalid.self) { try TransferAddress(parsing: "0.0.0.0:0") }
        #expect(try TransferAddress(parsing: "0.0.0.0:1").isWildcard && TransferAddress(parsing: "[::]:1").isWildcard)
        #expect(try !TransferAddress(parsing: "127.0.0.1:1").isWildcard)
    }

    func beat(_ id: String, kind: Heartbeat.Kind = .worker, at: Int64, levels: [String: String], unavailable: [String] = [],
              transfer: String?) -> Heartbeat {
        Heartbeat(id: id, kind: kind, beatAt: at, directories: levels, unavailable: unavailable, transfer: transfer)
    }

    @Test func aLevelIsServedByTheLiveWorkersThatAdvertiseItsDirectoryAndAnAddress() {
        let beats = [
            beat("edge-1", at: 100, levels: ["gold": "/ssd"], transfer: "10.0.0.1:7400"),
            beat("archive-1", at: 300, levels: ["silver": "/hdd", "gold": "/hdd2"], transfer: "10.0.0.2:7400"),
            beat("archive-2", at: 200, levels: ["gold": "/hdd"], transfer: "10.0.0.3:7400"),
            // Each of these is passed over: this worker itself, one without an address (a shared
            // mount), one whose level is out of service, a committer, an address that does not parse.
            beat("me", at: 400, levels: ["gold": "/ssd"], transfer: "10.0.0.9:7400"),
            beat("shared", at: 400, levels: ["gold": "/nfs"], transfer: nil),
            beat("unmounted", at: 400, levels: ["gold": "/ssd"], unavailable: ["gold"], transfer: "10.0.0.4:7400"),
            beat("c1", kind: .committer, at: 400, levels: ["gold": "/ssd"], transfer: "10.0.0.5:7400"),
            beat("garbled", at: 400, levels: ["gold": "/ssd"], transfer: "10.0.0.6"),
        ]
        let peers = TransferPeer.serving("gold", among: beats, excluding: "me")
        #expect(peers.map(\.worker) == ["archive-1", "archive-2", "edge-1"])
        #expect(peers.first?.address == TransferAddress(host: "10.0.0.2", port: 7400))
        #expect(TransferPeer.serving("silver", among: beats, excluding: "me").map(\.worker) == ["archive-1"])
        #expect(TransferPeer.serving("bronze", among: beats, excluding: "me").isEmpty)
    }

    @Test func aWorkerWithoutATransferAddressServesNoLevel() {
        #expect(beat("w", at: 1, levels: ["gold": "/ssd"], transfer: nil).transferLevels.isEmpty)
        #expect(beat("w", at: 1, levels: ["gold": "/ssd", "silver": "/hdd"], unavailable: ["silver"], transfer: "h:1").transferLevels == ["gold"])
    }
}

/// A worker whose endpoint speaks TLS says so in its heartbeat (`transfer_tls`), and its peers
/// know it: pure rules, no server.
@Suite struct TransferTLSAdvertTests {
    @Test func theHeartbeatSaysTLSAndThePeerCarriesIt() throws {
        var beat = Heartbeat(id: "archive", kind: .worker, beatAt: 1, directories: ["bronze": "/srv/bulk"], transfer: "10.0.0.20:7700",
                             transferTLS: true)
        #expect(beat.fields[.transferTLS] == "1")
        let read = Heartbeat(id: "archive", fields: beat.fields)
        #expect(read.transferTLS)
        #expect(TransferPeer.serving("bronze", among: [read], excluding: "edge").map(\.tls) == [true])
        // Plain: no field, and a peer reached in plain HTTP.
        beat.transferTLS = false
        #expect(beat.fields[.transferTLS] == nil)
        #expect(TransferPeer.serving("bronze", among: [Heartbeat(id: "archive", fields: beat.fields)], excluding: "edge").map(\.tls) == [false])
        // No endpoint, nothing said of TLS.
        let none = Heartbeat(id: "archive", kind: .worker, directories: ["bronze": "/srv/bulk"], transferTLS: true)
        #expect(none.fields[.transferTLS] == nil)
    }
}
