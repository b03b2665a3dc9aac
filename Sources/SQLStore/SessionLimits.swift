import RelocatorCore
import Synchronization

/// How long a session of Relocator's waits on another's row locks, and how long the server lets a
/// session sit idle inside a transaction. A process stalled inside a transaction (SIGSTOP, a VM
/// pause) holds its row locks for as long as it is stopped: without these, a committer that needs
/// the same rows waited for ever, deaf to SIGTERM, and commits stopped everywhere. With them a lock
/// wait ends in an error within `lockWaitSeconds` (the committer tries again after its backoff, and
/// a stop ends it), and the server ends the stalled session after `idleInTransactionSeconds`,
/// releasing its locks (its transaction rolls back; the process reconnects when it wakes). No
/// transaction of Relocator's waits on anything but SQL, so neither ends a healthy one.
/// PostgreSQL: `lock_timeout`, `idle_in_transaction_session_timeout`, set once connected (a
/// setting the URL's `options` names is left as it says); MariaDB: `innodb_lock_wait_timeout`, `idle_transaction_timeout`; MySQL: the first.
///
/// And how long a statement may take (`answerTimeout`): the server ends one that runs longer
/// (PostgreSQL's `statement_timeout`, MariaDB's `max_statement_time`: `SQLError.Code.timedOut`),
/// and the client gives up a session whose server has sent nothing for that long and
/// `answerBackstop` more — a server stalled (a backend stopped, a VM paused) or a network that
/// silently drops everything, which the caller — a count's read, a commit — waited on for ever.
/// The statement then fails as a lost connection (the pool or the committer connects again); the
/// server ends the session and rolls its transaction back when it notices the socket shut. No
/// statement of Relocator's but a migration's takes that long; `relocator migrate` has no limit.
/// PostgreSQL: a deadline on the client's wait, started again whenever the socket moves;
/// MariaDB and MySQL: the connector's read and write timeouts.
///
/// `RELOCATOR_SQL_TIMEOUT_MS` sets the limit for the process (`setAnswerTimeout`): 0 for none (a
/// database large enough that a reconcile's read of every content takes longer).
public enum SessionLimits {
    /// The limit unless configured: 30 s.
    public static let defaultAnswerTimeout: Duration = .seconds(30)
    public static let answerBackstop: Duration = .seconds(5)
    /// The setting that configures the limit (ms; 0: none).
    public static let answerTimeoutSetting = "RELOCATOR_SQL_TIMEOUT_MS"
    /// The limit in ms, 0 for none.
    private static let configured = Atomic<Int64>(defaultAnswerTimeout.milliseconds)

    /// The limit sessions opened from now on get (nil: none).
    public static var answerTimeout: Duration? {
        let milliseconds = configured.load(ordering: .relaxed)
        return milliseconds > 0 ? .milliseconds(milliseconds) : nil
    }

    /// Sets the limit sessions opened from now on get: `milliseconds` (0 or less: none). The
    /// command line reads it from `RELOCATOR_SQL_TIMEOUT_MS` as it starts.
    public static func setAnswerTimeout(milliseconds: Int64) {
        configured.store(max(0, milliseconds), ordering: .relaxed)
    }
    public static let lockWaitSeconds = 10
    public static let idleInTransactionSeconds = 60

    /// PostgreSQL's settings and their values, set on each session once connected.
    static var postgresSettings: [(name: String, value: String)] {
        [("lock_timeout", "\(lockWaitSeconds)s"), ("idle_in_transaction_session_timeout", "\(idleInTransactionSeconds)s")]
    }
}
