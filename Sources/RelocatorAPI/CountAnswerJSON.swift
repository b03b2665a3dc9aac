import Hummingbird
import RelocatorCore

/// The answers of `POST /v1/contents/{cid}/count`, written straight into a buffer with the bytes
/// `RelocatorJSON` (Foundation's `JSONEncoder`: keys sorted, compact, `/` not escaped) writes for
/// `SubmittedView` and `InPlaceView`. The encoder cost about 150,000 instructions a request, more
/// than everything else the route does (callgrind); `CountAnswerJSONTests` holds the two to the
/// same bytes for every field. Other routes keep the encoder.
enum CountAnswerJSON {
    /// `{"job":{…},"outcome":"created"}` (202).
    static func submitted(outcome: String, job: JobView?) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 640)
        buffer.writeStaticString("{\"job\":")
        if let job { write(job, to: &buffer) } else { buffer.writeStaticString("null") }
        buffer.writeStaticString(",\"outcome\":")
        writeString(outcome, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// `{"cid":7,"level":"gold","status":"in_place"}` (200).
    static func inPlace(cid: Int64, level: String) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 96)
        buffer.writeStaticString("{\"cid\":")
        buffer.writeString(String(cid))
        buffer.writeStaticString(",\"level\":")
        writeString(level, to: &buffer)
        buffer.writeStaticString(",\"status\":\"in_place\"}")
        return buffer
    }

    /// A job as `JobView.encode(to:)` gives it, keys in sorted order, absent values as `null`.
    static func write(_ view: JobView, to buffer: inout ByteBuffer) {
        let job = view.job
        buffer.writeStaticString("{\"attempts\":")
        buffer.writeString(String(job.attempts))
        buffer.writeStaticString(",\"bytes\":")
        writeNumber(job.bytes, to: &buffer)
        buffer.writeStaticString(",\"bytes_done\":")
        buffer.writeString(String(job.bytesDone ?? 0))
        buffer.writeStaticString(",\"bytes_total\":")
        writeNumber(job.bytesTotal, to: &buffer)
        buffer.writeStaticString(",\"checksum\":")
        writeString(job.checksum, to: &buffer)
        buffer.writeStaticString(",\"cid\":")
        buffer.writeString(String(job.cid))
        buffer.writeStaticString(",\"count\":")
        buffer.writeString(String(job.count))
        buffer.writeStaticString(",\"db_level\":")
        writeString(job.dbLevel, to: &buffer)
        buffer.writeStaticString(",\"defer_reason\":")
        writeString(job.deferReason, to: &buffer)
        buffer.writeStaticString(",\"due_at\":")
        writeTime(Timestamp(milliseconds: job.dueAt), to: &buffer)
        buffer.writeStaticString(",\"earlier_error\":")
        writeString(job.earlierError, to: &buffer)
        buffer.writeStaticString(",\"enqueued_at\":")
        writeTime(Timestamp(milliseconds: job.enqueuedAt), to: &buffer)
        buffer.writeStaticString(",\"fence\":")
        writeNumber(job.fence, to: &buffer)
        buffer.writeStaticString(",\"filename\":")
        writeString(job.filename, to: &buffer)
        buffer.writeStaticString(",\"gen\":")
        buffer.writeString(String(job.gen))
        buffer.writeStaticString(",\"id\":\"")
        buffer.writeString(String(job.cid))
        buffer.writeInteger(UInt8(ascii: ":"))
        buffer.writeString(String(job.gen))
        buffer.writeStaticString("\",\"last_error\":")
        writeString(job.lastError, to: &buffer)
        buffer.writeStaticString(",\"next_queued_by\":")
        writeQueuedBy(job.nextQueuedBy, to: &buffer)
        buffer.writeStaticString(",\"next_retry_at\":")
        writeTime(view.nextRetryAt, to: &buffer)
        buffer.writeStaticString(",\"next_target\":")
        writeString(job.nextTarget, to: &buffer)
        buffer.writeStaticString(",\"queued_by\":")
        writeQueuedBy(job.queuedBy, to: &buffer)
        buffer.writeStaticString(",\"reason\":")
        writeString(job.reason, to: &buffer)
        buffer.writeStaticString(",\"stage\":")
        writeString(job.stage?.rawValue, to: &buffer)
        buffer.writeStaticString(",\"started_at\":")
        writeTime(Timestamp(milliseconds: job.startedAt), to: &buffer)
        buffer.writeStaticString(",\"status\":")
        writeString(job.status.rawValue, to: &buffer)
        buffer.writeStaticString(",\"target\":")
        writeString(job.target, to: &buffer)
        buffer.writeStaticString(",\"token\":")
        writeNumber(job.token, to: &buffer)
        buffer.writeStaticString(",\"updated_at\":")
        writeTime(Timestamp(milliseconds: job.updatedAt), to: &buffer)
        buffer.writeStaticString(",\"worker_id\":")
        writeString(job.workerID, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// `{"rule":…,"who":…}` as `QueuedByView` encodes, or `null`.
    static func writeQueuedBy(_ value: QueuedBy?, to buffer: inout ByteBuffer) {
        guard let value else {
            buffer.writeStaticString("null")
            return
        }
        buffer.writeStaticString("{\"rule\":")
        writeString(value.rule, to: &buffer)
        buffer.writeStaticString(",\"who\":")
        writeString(value.who, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    static func writeNumber(_ value: Int64?, to buffer: inout ByteBuffer) {
        if let value { buffer.writeString(String(value)) } else { buffer.writeStaticString("null") }
    }

    static func writeTime(_ time: Timestamp?, to buffer: inout ByteBuffer) {
        guard let time else {
            buffer.writeStaticString("null")
            return
        }
        buffer.writeInteger(UInt8(ascii: "\""))
        time.write(to: &buffer)
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// A string as JSONEncoder writes it (UTF-8 as is; quote, backslash and control characters
    /// escaped), with the escaping `CompatJSON` already has; nil as `null`.
    static func writeString(_ text: String?, to buffer: inout ByteBuffer) {
        guard let text else {
            buffer.writeStaticString("null")
            return
        }
        CompatJSON.writeString(text, asciiOnly: false, to: &buffer)
    }
}
