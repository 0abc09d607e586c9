public import Foundation
import Synchronization

/// Who may try a password now. Three counters, all in memory and bounded:
///
/// - **per client address** (the resolved address, trusted proxies honoured, kept only as a keyed
///   hash): `addressFailures` failed attempts in `window`, then 429 until the oldest ages out,
///   whatever account they were aimed at (password spraying);
/// - **per account**, from browsers the account never signed in from: after `freeFailures`
///   failures in `window`, each further attempt must wait 1, 2, 4 … up to `maxDelay` seconds after
///   the previous failure. A delay, never a lockout: the owner can always try again within
///   `maxDelay`;
/// - **per known device** (a browser that signed in to the account before, recognised by its
///   device cookie): its own `freeFailures` in `window`; attacks on the account from elsewhere
///   never delay it (device cookies, as OWASP recommends against lockout attacks).
///
/// Unknown e-mail addresses get no entry of their own. Address entries expire with `window` and
/// are capped at `capacity` (the oldest go first).
public final class LoginThrottle: Sendable {
    public struct Limits: Sendable {
        public var window: TimeInterval = 15 * 60
        public var addressFailures = 10
        public var freeFailures = 5
        public var maxDelay: TimeInterval = 30
        public var capacity = 10_000
        public init() {}
    }

    public let limits: Limits
    private struct Account { var failures: [Date] = [] }
    private struct State {
        var addresses: [String: [Date]] = [:]
        var accounts: [Int64: Account] = [:]
        var devices: [String: [Date]] = [:]
        var lastSweep = Date.distantPast
    }
    private let state = Mutex(State())

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// An attempt under way: counted as a failure from its start, so concurrent attempts cannot
    /// all slip through before the first one fails; ``settle(_:succeeded:)`` takes it back when
    /// the password was right, or the check did not happen.
    public struct Attempt: Sendable {
        let address: String
        let account: Int64?
        let device: String?
        let at: Date
    }

    /// The seconds to wait, or an attempt that may go ahead (already counted as a failure).
    public func begin(address: String, account: Int64?, device: String?, now: Date) -> Result<Attempt, Wait> {
        state.withLock { s in
            if let wait = wait(&s, address: address, account: account, device: device, now: now) { return .failure(Wait(seconds: wait)) }
            recordFailure(&s, address: address, account: account, device: device, now: now)
            return .success(Attempt(address: address, account: account, device: device, at: now))
        }
    }

    public struct Wait: Error { public let seconds: Int }

    /// Ends an attempt: a success (or a check that never ran) takes its provisional failure back,
    /// and a success also clears the account's and the device's failures (not the address's:
    /// signing in to one's own account must not reset a spraying budget).
    public func settle(_ attempt: Attempt, succeeded: Bool, checked: Bool = true) {
        guard succeeded || !checked else { return }
        state.withLock { s in
            func drop(_ dates: inout [Date]?) {
                if let i = dates?.lastIndex(of: attempt.at) { dates?.remove(at: i) }
                if dates?.isEmpty == true { dates = nil }
            }
            drop(&s.addresses[attempt.address])
            if succeeded {
                if let account = attempt.account { s.accounts[account] = nil }
                if let device = attempt.device { s.devices[device] = nil }
            } else if let device = attempt.device {
                drop(&s.devices[device])
            } else if let account = attempt.account {
                var failures: [Date]? = s.accounts[account]?.failures
                drop(&failures)
                s.accounts[account] = failures.map { Account(failures: $0) }
            }
        }
    }

    /// nil when an attempt may go ahead, else the seconds to wait.
    public func wait(address: String, account: Int64?, device: String?, now: Date) -> Int? {
        state.withLock { s in wait(&s, address: address, account: account, device: device, now: now) }
    }

    private func wait(_ s: inout State, address: String, account: Int64?, device: String?, now: Date) -> Int? {
        sweepIfDue(&s, now: now)
        var waits: [TimeInterval] = []
        let fromAddress = recent(s.addresses[address], now)
        if fromAddress.count >= limits.addressFailures, let oldest = fromAddress.first { waits.append(limits.window - now.timeIntervalSince(oldest)) }
        if let device {
            let d = recent(s.devices[device], now)
            if d.count >= limits.freeFailures, let oldest = d.first { waits.append(limits.window - now.timeIntervalSince(oldest)) }
        } else if let account, let a = s.accounts[account] {
            let failures = recent(a.failures, now)
            if failures.count >= limits.freeFailures, let last = failures.last {
                let delay = min(limits.maxDelay, pow(2, Double(failures.count - limits.freeFailures)))
                waits.append(delay - now.timeIntervalSince(last))
            }
        }
        guard let longest = waits.max(), longest > 0 else { return nil }
        return max(1, Int(longest.rounded(.up)))
    }

    /// Records a failed attempt. `device` is set only for a device cookie known for `account`.
    public func failed(address: String, account: Int64?, device: String?, now: Date) {
        state.withLock { s in recordFailure(&s, address: address, account: account, device: device, now: now) }
    }

    private func recordFailure(_ s: inout State, address: String, account: Int64?, device: String?, now: Date) {
        sweepIfDue(&s, now: now)
        if s.addresses[address] == nil && s.addresses.count >= limits.capacity { evictOldest(&s) }
        s.addresses[address] = Array((recent(s.addresses[address], now) + [now]).suffix(limits.addressFailures))
        if let device {
            if s.devices[device] == nil && s.devices.count >= limits.capacity { s.devices.removeAll() }
            s.devices[device] = Array((recent(s.devices[device], now) + [now]).suffix(limits.freeFailures))
        } else if let account {
            // Enough to reach the longest delay; older failures add nothing.
            let keep = limits.freeFailures + Int(log2(limits.maxDelay)) + 2
            s.accounts[account, default: Account()].failures = Array((recent(s.accounts[account]?.failures, now) + [now]).suffix(keep))
        }
    }

    /// Entries held (tests: memory stays bounded).
    public var entries: Int { state.withLock { $0.addresses.count + $0.accounts.count + $0.devices.count } }

    private func recent(_ dates: [Date]?, _ now: Date) -> [Date] {
        (dates ?? []).filter { now.timeIntervalSince($0) < limits.window }
    }

    private func sweepIfDue(_ s: inout State, now: Date) {
        guard now.timeIntervalSince(s.lastSweep) > 60 else { return }
        s.lastSweep = now
        s.addresses = s.addresses.compactMapValues { d in let r = recent(d, now); return r.isEmpty ? nil : r }
        s.devices = s.devices.compactMapValues { d in let r = recent(d, now); return r.isEmpty ? nil : r }
        s.accounts = s.accounts.compactMapValues { a in let r = recent(a.failures, now); return r.isEmpty ? nil : Account(failures: r) }
    }

    private func evictOldest(_ s: inout State) {
        if let oldest = s.addresses.min(by: { ($0.value.last ?? .distantPast) < ($1.value.last ?? .distantPast) })?.key {
            s.addresses[oldest] = nil
        }
    }
}

/// At most `limit` password checks at once (argon2id takes 64 MiB and tens of milliseconds each),
/// off the cooperative threads; at most `queue` more wait, the rest are told to come back.
final class HashingGate: Sendable {
    private struct State {
        var running = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())
    let limit: Int
    let queue: Int

    init(limit: Int = max(1, ProcessInfo.processInfo.activeProcessorCount / 2), queue: Int = 32) {
        self.limit = limit
        self.queue = queue
    }

    private enum Entry { case go, wait, refuse }

    /// Runs `work` on a background thread when a slot is free; nil when too many are waiting.
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T? {
        let entry = state.withLock { s -> Entry in
            if s.running < limit { s.running += 1; return .go }
            return s.waiting.count < queue ? .wait : .refuse
        }
        switch entry {
        case .refuse: return nil
        case .wait:
            await withCheckedContinuation { c in
                let started = state.withLock { s -> Bool in
                    if s.running < limit { s.running += 1; return true }
                    s.waiting.append(c)
                    return false
                }
                if started { c.resume() }
            }
        case .go: break
        }
        let result = await withCheckedContinuation { c in
            DispatchQueue.global(qos: .userInitiated).async { c.resume(returning: work()) }
        }
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiting.isEmpty { s.running -= 1; return nil }
            return s.waiting.removeFirst()   // the slot passes on
        }
        next?.resume()
        return result
    }
}
