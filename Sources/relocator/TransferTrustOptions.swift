import ArgumentParser
import RelocatorServices

/// `--transfer-tls-ca` and `--transfer-tls-required` of `worker` and `reconcile`: how the other
/// hosts' workers are reached when they speak TLS.
struct TransferTrustOptions: ParsableArguments {
    @Option(help: "A PEM bundle of the CAs that sign the workers' --transfer-tls-cert: a worker that speaks TLS is reached over TLS, its certificate checked against them and the address it advertises. (default: none: a worker that speaks TLS is not reached: a pull from it fails with transfer_tls, and reconcile reports its levels unverified)")
    var transferTlsCa: String?

    @Flag(help: "Reach every other host's worker over TLS: one whose heartbeat does not advertise TLS is sent nothing (a pull from it fails with transfer_tls, naming it; reconcile reports its levels unverified). Needs --transfer-tls-ca. Give it once every worker serves with --transfer-tls-cert. (default: off: a worker that does not advertise TLS is reached over plain HTTP)")
    var transferTlsRequired = false

    /// The CAs read and parsed (nil without `--transfer-tls-ca`); checked as the command runs: a
    /// file that cannot be read or parsed, or `--transfer-tls-required` alone, is one line naming it.
    func trust() throws -> TransferTLSTrust? {
        if transferTlsRequired && transferTlsCa == nil {
            throw ValidationError("--transfer-tls-required needs --transfer-tls-ca (the CAs the workers' certificates are checked against)")
        }
        do {
            var trust = try transferTlsCa.map { path throws(TransferTLSTrust.Invalid) in try TransferTLSTrust(caFile: path) }
            trust?.required = transferTlsRequired
            return trust
        } catch {
            throw CommandFailure("--transfer-tls-ca \(error)")
        }
    }
}
