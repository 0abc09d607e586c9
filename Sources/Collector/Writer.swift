public import Foundation
public import Logging
public import Store
public import Storage
import Synchronization

/// Group-commit writer: the only code that writes events to the store (SQLite or PostgreSQL).
///
/// Request handlers hand it their minimized rows and wait. A dedicated thread takes everything
/// queued, writes it in one transaction, commits, and only then resumes the waiting handlers, so
/// a 202 is sent only for committed events. While one transaction commits, the next batch
/// accumulates, which is what makes throughput grow with load.
public final class EventWriter: Sendable {
    public struct WriteError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Called on the writer thread once the rows' transaction committed (or failed).
    public typealias Completion = @Sendable (Result<[InsertOutcome], any Error>) -> Void

    private struct Pending {
        var rows: [EventRow]
        var tally: ConsentTally?
        var completion: Completion
    }
    private struct State {
        var queue: [Pending] = []
        var queuedRows = 0
        var stopping = false
        /// The writer thread is (about to be) blocked in `condition.wait()`: only then is a
        /// wake-up (a futex syscall) needed.
        var writerWaiting = false
    }

    private let sink: any EventSink
    /// SQLite's: finishes a WAL checkpoint between two batches (``requestCheckpoint()``).
    private let checkpoint: (@Sendable () throws -> Void)?
    private let metrics: CollectorMetrics
    private let logger: Logger
    private let maxBatchRows: Int
    private let state = Mutex(State())
    private let condition = NSCondition()
    private let finished = Atomic<Bool>(false)
    private let checkpointWanted = Atomic<Bool>(false)
    private let outcomes = Mutex(Outcomes())

    /// The writer's recent outcomes, for /health.
    public struct Outcomes: Sendable {
        public var lastCommit: Date?
        public var lastFailure: Date?
        public var lastError: String?
        /// The latest transaction failed: writes are failing now.
        public var failing: Bool { lastFailure != nil && (lastCommit ?? .distantPast) < lastFailure! }
    }

    public var health: Outcomes { outcomes.withLock { $0 } }

    public convenience init(database: AppDatabase, metrics: CollectorMetrics, logger: Logger, maxBatchRows: Int = 2000) {
        self.init(sink: database, checkpoint: { try database.finishCheckpoint() }, metrics: metrics, logger: logger,
                  maxBatchRows: maxBatchRows)
    }

    /// A writer to any store; `checkpoint` runs between two batches when asked for.
    public init(sink: any EventSink, checkpoint: (@Sendable () throws -> Void)? = nil, metrics: CollectorMetrics,
                logger: Logger, maxBatchRows: Int = 2000) {
        self.sink = sink
        self.checkpoint = checkpoint
        self.metrics = metrics
        self.logger = logger
        self.maxBatchRows = maxBatchRows
        let thread = Thread { [self] in self.run() }
        thread.name = "candor-writer"
        thread.start()
    }

    /// Queues rows and returns their outcomes once the transaction holding them committed.
    /// `tally`: consent counts that come with no row (events dropped for consent), committed
    /// in the same transaction.
    public func write(_ rows: [EventRow], tally: ConsentTally? = nil) async throws -> [InsertOutcome] {
        if rows.isEmpty && tally?.isEmpty != false { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            enqueue(rows, tally: tally) { continuation.resume(with: $0) }
        }
    }

    /// Queues rows; `completion` runs on the writer thread after the commit. For callers that
    /// must not suspend (the event-loop handler hops back to its loop from the completion).
    public func enqueue(_ rows: [EventRow], tally: ConsentTally? = nil, completion: @escaping Completion) {
        let (accepted, mustWake) = state.withLock { s -> (Bool, Bool) in
            if s.stopping { return (false, false) }
            s.queue.append(Pending(rows: rows, tally: tally?.isEmpty == false ? tally : nil, completion: completion))
            s.queuedRows += rows.count
            return (true, s.writerWaiting)
        }
        guard accepted else {
            completion(.failure(WriteError(description: "the writer is shutting down")))
            return
        }
        metrics.queueDepth.add(rows.count)
        if mustWake { wake() }
    }

    /// Asks the writer to finish a checkpoint after its current batch (see
    /// ``AppDatabase/finishCheckpoint()``): the background checkpointer calls this when the WAL
    /// has grown long, right after it copied most of it.
    public func requestCheckpoint() {
        checkpointWanted.store(true, ordering: .relaxed)
    }

    /// Stops accepting, drains what is queued, and returns when the thread has finished.
    public func shutdown() async {
        state.withLock { $0.stopping = true }
        wake()
        while !finished.load(ordering: .acquiring) {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func wake() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    private func take() -> [Pending]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let (batch, stop) = state.withLock { s -> ([Pending], Bool) in
                s.writerWaiting = s.queue.isEmpty && !s.stopping
                guard !s.queue.isEmpty else { return ([], s.stopping) }
                var taken: [Pending] = []
                var rows = 0
                while let first = s.queue.first, taken.isEmpty || rows + first.rows.count <= maxBatchRows {
                    taken.append(s.queue.removeFirst())
                    rows += first.rows.count
                }
                s.queuedRows -= rows
                return (taken, false)
            }
            if !batch.isEmpty { return batch }
            if stop { return nil }
            condition.wait()
        }
    }

    private func finishCheckpoint() {
        guard let checkpoint else { return }
        let started = ContinuousClock.now
        do {
            try checkpoint()
            metrics.writerCheckpointSeconds.observe((ContinuousClock.now - started).inSeconds)
        } catch {
            logger.error("WAL checkpoint failed", metadata: ["error": "\(error)"])
        }
    }

    private func run() {
        while let batch = take() {
            let rows = batch.flatMap(\.rows)
            metrics.queueDepth.add(-rows.count)
            let started = ContinuousClock.now
            do {
                let outcomes = try sink.insertEvents(rows, tallies: batch.compactMap(\.tally))
                self.outcomes.withLock { $0.lastCommit = Date() }
                let elapsed = ContinuousClock.now - started
                metrics.commitSeconds.observe(elapsed.inSeconds)
                metrics.batchSize.observe(Double(rows.count))
                var offset = 0
                for pending in batch {
                    let n = pending.rows.count
                    pending.completion(.success(Array(outcomes[offset..<offset + n])))
                    offset += n
                }
            } catch {
                metrics.writeErrors.add()
                self.outcomes.withLock { $0.lastFailure = Date(); $0.lastError = String("\(error)".prefix(300)) }
                logger.error("batch failed to commit; nothing of it was stored", metadata: ["events": "\(rows.count)", "error": "\(error)"])
                for pending in batch {
                    pending.completion(.failure(WriteError(description: "storage unavailable; nothing was stored, retry later")))
                }
            }
            if checkpointWanted.exchange(false, ordering: .relaxed) { finishCheckpoint() }
        }
        finished.store(true, ordering: .releasing)
    }
}

public import ServiceLifecycle

/// Runs until graceful shutdown, then drains the writer. List it before the HTTP server in a
/// ServiceGroup so it stops after the server has stopped taking requests.
public struct WriterService: Service {
    let writer: EventWriter
    public init(writer: EventWriter) { self.writer = writer }
    public func run() async throws {
        try? await gracefulShutdown()
        await writer.shutdown()
    }
}

extension Duration {
    /// The duration in (fractional) seconds.
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Keeps the WAL short without a checkpoint inside any commit (``AppDatabase/handOverCheckpoints()``).
///
/// Passive checkpoints run on their own connection and thread (``WALCheckpointer``): every
/// 10 ms while the WAL grows, every 200 ms while nothing is written; they copy pages and sync
/// the file while the writer goes on. They cannot start the WAL over, since the writer keeps
/// appending: once the WAL holds `restartFrames` frames, the service asks the writer to finish
/// a checkpoint between two batches, right after a passive one, when little is left to copy.
public struct CheckpointService: Service {
    let checkpointer: WALCheckpointer
    let writer: EventWriter
    let logger: Logger
    let busyInterval: Duration
    let idleInterval: Duration
    let restartFrames: Int

    public init(checkpointer: WALCheckpointer, writer: EventWriter, logger: Logger,
                busyInterval: Duration = .milliseconds(10), idleInterval: Duration = .milliseconds(200),
                restartFrames: Int = 8000) {
        self.checkpointer = checkpointer; self.writer = writer; self.logger = logger
        self.busyInterval = busyInterval; self.idleInterval = idleInterval; self.restartFrames = restartFrames
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            var lastFrames = 0
            var interval = idleInterval
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch is CancellationError { return }
                // A checkpoint writes and syncs the database file: not on the cooperative threads.
                let result = await withCheckedContinuation { continuation in
                    DispatchQueue.global(qos: .utility).async { continuation.resume(returning: Result { try checkpointer.run() }) }
                }
                switch result {
                case .success(let frames):
                    if frames >= restartFrames { writer.requestCheckpoint() }
                    interval = frames != lastFrames ? busyInterval : idleInterval
                    lastFrames = frames
                case .failure(let error):
                    interval = idleInterval
                    logger.error("WAL checkpoint failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
