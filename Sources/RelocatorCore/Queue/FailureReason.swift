/// Why a move failed (or did not happen), as the job records it in `reason`: the one vocabulary of
/// the mover's errors, the worker's decisions and the dead letters. Snake-case codes.
public enum FailureReason: String, Sendable, CaseIterable, Codable {
    /// The filename is absolute, has `..`, `.`, empty components, NUL, or lies in `.relocator/`.
    case invalidFilename = "invalid_filename"
    /// A symbolic link on the filename's way (or at its end), or two levels that are one directory.
    case unsafePath = "unsafe_path"
    /// A level without a directory on this worker.
    case unknownLevel = "unknown_level"
    /// The file is on no level's disk.
    case sourceMissing = "source_missing"
    /// The source is a directory, a device, a FIFO…
    case notRegularFile = "not_regular_file"
    /// The destination holds other bytes, or is not a regular file.
    case destinationConflict = "destination_conflict"
    /// The source was written to, replaced or removed while it was being moved.
    case sourceChanged = "source_changed"
    case noSpace = "no_space"
    case permissionDenied = "permission_denied"
    case readOnly = "read_only"
    case ioError = "io_error"
    /// The copy read back from the device differs from what was read from the source.
    case checksumMismatch = "checksum_mismatch"
    /// The worker is stopping (shutdown): not a failure.
    case cancelled
    /// The job is no longer this delivery's: not a failure; nothing was published or removed.
    case leaseLost = "lease_lost"
    /// Another delivery holds the content's lock on this host: not a failure; the job waits.
    case contentLocked = "content_locked"
    /// A level's directory is no longer the one the worker checked at start: the job waits.
    case levelUnavailable = "level_unavailable"
    /// The job's hash in Redis cannot be read as a job.
    case undecodableJob = "undecodable_job"
    /// The content can never fit below its target's high watermark.
    case doesNotFit = "does_not_fit"
    /// TLS with the source's worker was refused: no `--transfer-tls-ca` for a peer that speaks
    /// TLS, a certificate not signed by a trusted CA or not naming the peer's address, a peer that
    /// does not speak TLS. A configuration to mend: retried with backoff, then dead, never silent.
    case transferTLS = "transfer_tls"

    /// Permanent failures go straight to the dead-letter list; the others are retried (an operator
    /// can free space, fix permissions or remount; a changed source is copied again). A checksum
    /// mismatch is retried once (`RetryDecision`).
    public var isPermanent: Bool {
        switch self {
        case .invalidFilename, .unsafePath, .unknownLevel, .sourceMissing, .notRegularFile, .destinationConflict, .undecodableJob, .doesNotFit:
            return true
        case .sourceChanged, .noSpace, .permissionDenied, .readOnly, .ioError, .checksumMismatch, .cancelled, .leaseLost,
             .contentLocked, .levelUnavailable, .transferTLS:
            return false
        }
    }
}

/// What a worker does with a move that ended without moving: a pure decision over the failure, the
/// job's history and the retry policy.
public enum RetryDecision: Equatable, Sendable {
    /// Not a failure: the job is no longer this delivery's (nothing to report), or the worker stops
    /// (the job goes back as the worker leaves).
    case drop
    /// Waits without counting an attempt (`lockHeld`: the delivery held the content's lock).
    case wait(Duration, lockHeld: Bool)
    /// A failure: retried after `delay` unless the attempts are used up, or dead at once.
    case fail(permanent: Bool, delay: Duration)

    /// The decision for `reason`, after `attempts` failed attempts (the last one's reason `previous`).
    /// `random`, in 0…1, draws the jitter.
    public static func decide(_ reason: FailureReason, attempts: Int, previous: FailureReason?, policy: RetryPolicy,
                              lockedRetry: Duration, unavailableRetry: Duration, random: Double) -> RetryDecision {
        switch reason {
        case .leaseLost, .cancelled:
            return .drop
        case .contentLocked:
            return .wait(lockedRetry, lockHeld: false)
        case .levelUnavailable:
            return .wait(unavailableRetry, lockHeld: true)
        default:
            // A checksum mismatch seen twice in a row is the device, not chance.
            let permanent = reason.isPermanent || (reason == .checksumMismatch && previous == .checksumMismatch)
            // `attempts` comes from the job's hash: the largest there is counts as the largest, not a trap.
            let (failures, overflow) = attempts.addingReportingOverflow(1)
            return .fail(permanent: permanent, delay: policy.delay(afterFailures: overflow ? .max : failures, unit: random))
        }
    }
}
