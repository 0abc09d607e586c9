import CPCRE2
import Glibc

/// A regular expression compiled by PCRE2 (JIT-compiled where the platform allows), shared
/// read-only between threads. Subjects are matched as bytes (no UTF mode: hostile input cannot
/// fail a UTF check), with a match limit so no pattern can backtrack without bound.
final class Pattern: @unchecked Sendable {
    private let code: OpaquePointer
    let source: String

    struct CompileError: Error, CustomStringConvertible {
        let pattern: String
        let message: String
        var description: String { "cannot compile /\(pattern)/: \(message)" }
    }

    init(_ source: String, caseless: Bool = false) throws(CompileError) {
        var errorCode: Int32 = 0
        var errorOffset = 0
        let options: UInt32 = caseless ? UInt32(PCRE2_CASELESS) : 0
        let compiled = source.withCString { text in
            text.withMemoryRebound(to: UInt8.self, capacity: source.utf8.count) {
                pcre2_compile_8($0, source.utf8.count, options, &errorCode, &errorOffset, nil)
            }
        }
        guard let compiled else {
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = pcre2_get_error_message_8(errorCode, &buffer, buffer.count)
            throw CompileError(pattern: source, message: String(decoding: buffer.prefix(max(0, Int(n))), as: UTF8.self) + " at \(errorOffset)")
        }
        // Without JIT (unsupported platform, no executable memory) the interpreter is used.
        _ = pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE))
        self.code = compiled
        self.source = source
    }

    deinit { pcre2_code_free_8(code) }

    /// The capture groups of the first match in `subject` (index 0: the whole match; nil: group
    /// unset), or nil when nothing matches (or the match limit was reached).
    func captures(in subject: UnsafeBufferPointer<UInt8>, _ scratch: MatchScratch) -> [Range<Int>?]? {
        guard let base = subject.baseAddress else { return nil }
        let rc = pcre2_match_8(code, base, subject.count, 0, 0, scratch.data, MatchScratch.context)
        if rc < -1 { scratch.errors += 1; return nil }  // a limit reached, not "no match"
        guard rc >= 0 else { return nil }
        let vector = pcre2_get_ovector_pointer_8(scratch.data)!
        let unset = ~Int(0)
        // 0: a match with more groups than the match data holds; the first ones are there.
        let groups = rc == 0 ? Int(pcre2_get_ovector_count_8(scratch.data)) : Int(rc)
        return (0..<groups).map { i in
            let start = vector[2 * i], end = vector[2 * i + 1]
            return start == unset || end == unset || start > end ? nil : start..<end
        }
    }
}

/// Per-call match state (not shareable between threads): one per classification.
final class MatchScratch {
    let data: OpaquePointer
    /// Matches that ended in an error (a match or depth limit) instead of a verdict.
    var errors = 0

    /// Bounds every match: a pathological pattern/subject pair gives up (no match) instead of
    /// spinning; real user agents need a few hundred steps at most.
    nonisolated(unsafe) static let context: OpaquePointer = {
        let context = pcre2_match_context_create_8(nil)!
        pcre2_set_match_limit_8(context, 200_000)
        pcre2_set_depth_limit_8(context, 10_000)
        return context
    }()

    init() { data = pcre2_match_data_create_8(20, nil) }
    deinit { pcre2_match_data_free_8(data) }
}

/// An ordered list of patterns of which the first match wins, each tried only when the
/// subject contains one of the literal texts every match of it must contain one of (found by
/// reading the pattern, see `requiredLiterals`): most user agents need a few dozen of a
/// thousand patterns.
struct PatternList<Payload: Sendable>: Sendable {
    struct Entry: Sendable {
        let pattern: Pattern
        /// Indices of the literals of which one must occur (empty: always tried).
        let literals: [Int]
        let payload: Payload
    }
    private(set) var entries: [Entry] = []
    /// Lowercased required literals, deduplicated; entries point into it.
    private var literals: [[UInt8]] = []
    private var literalIndex: [[UInt8]: Int] = [:]
    /// Patterns PCRE2 refused (reported, never silently dropped).
    private(set) var rejected: [String] = []
    /// Built by `seal()` once every pattern is in.
    private var scanner = LiteralScanner([])

    var count: Int { entries.count }

    mutating func append(_ source: String, caseless: Bool = false, payload: Payload) {
        do {
            let pattern = try Pattern(source, caseless: caseless)
            var required: [Int] = []
            for text in requiredLiterals(source) ?? [] {
                if let i = literalIndex[text] { required.append(i) } else {
                    required.append(literals.count)
                    literalIndex[text] = literals.count
                    literals.append(text)
                }
            }
            entries.append(Entry(pattern: pattern, literals: required, payload: payload))
        } catch {
            rejected.append(error.description)
        }
    }

    /// Prepares the prefilter; call after the last `append`.
    mutating func seal() { scanner = LiteralScanner(literals) }

    /// The first entry matching `subject`, with its capture groups.
    /// `prefilter: false` tries every pattern (the reference the prefilter is tested against).
    func firstMatch(in subject: Subject, _ scratch: MatchScratch, prefilter: Bool = true) -> (entry: Entry, groups: [Range<Int>?])? {
        precondition(scanner.count == literals.count, "PatternList used before seal()")
        let present = prefilter ? scanner.present(in: subject.lowered) : []
        for entry in entries {
            if prefilter, !entry.literals.isEmpty, !entry.literals.contains(where: { present[$0] }) { continue }
            let groups = subject.bytes.withUnsafeBufferPointer { entry.pattern.captures(in: $0, scratch) }
            if let groups { return (entry, groups) }
        }
        return nil
    }
}

/// The text being classified, as bytes and ASCII-lowercased bytes (for the literal prefilter).
struct Subject {
    let bytes: [UInt8]
    let lowered: [UInt8]

    init(_ text: String, limit: Int) {
        bytes = Array(text.utf8.prefix(limit))
        lowered = bytes.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }
    }

    func containsLowercased(_ needle: [UInt8]) -> Bool {
        guard let first = needle.first, needle.count <= lowered.count else { return needle.isEmpty }
        return lowered.withUnsafeBytes { h in
            needle.withUnsafeBytes { n in
                let base = h.baseAddress!, last = h.count - n.count
                var i = 0
                while i <= last {
                    // memchr finds the next candidate first byte; memcmp checks the rest.
                    guard let hit = memchr(base + i, Int32(first), last - i + 1) else { return false }
                    let at = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + at, n.baseAddress!, n.count) == 0 { return true }
                    i = at + 1
                }
                return false
            }
        }
    }

    func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
}

/// What every match of the regular expression `source` must contain: a set of literal texts
/// (ASCII-lowercased) of which at least one occurs in any match, or nil when nothing useful can
/// be proven. Read conservatively: optional or repeated parts, classes, escapes of character
/// types and lookarounds contribute nothing; a group counts when the group itself is required;
/// an alternation requires one of its branches' requirements. Case-insensitive containment is
/// implied by any match, case-sensitive or not, so the prefilter never skips a pattern that
/// could match.
func requiredLiterals(_ source: String) -> [[UInt8]]? {
    let b = Array(source.utf8)
    guard onlyModelledSyntax(b) else { return nil }
    var i = 0
    let sets = requirements(b, &i)
    return bestRequirement(sets)
}

/// Whether `requirements` models every construct of the pattern: escapes of punctuation or of
/// the plain character types only (no `\x41`, `\12`, `\p{…}`, `\Q…\E`, `\k<…>`…), no POSIX
/// classes, verbs, comments, conditionals, branch resets, back-references by name or extended
/// mode, and braces only as quantifiers. Anything else: no prefilter (the pattern is always tried).
func onlyModelledSyntax(_ b: [UInt8]) -> Bool {
    let plainEscapes = Set("dDwWsSbBAzZhHvVtnrfe".utf8)
    var i = 0
    var inClass = false
    while i < b.count {
        let c = b[i]
        if c == UInt8(ascii: "\\") {
            guard i + 1 < b.count else { return false }
            let e = b[i + 1]
            let isAlnum = (e >= 48 && e <= 57) || ((e | 0x20) >= 97 && (e | 0x20) <= 122)
            if isAlnum && !plainEscapes.contains(e) { return false }
            i += 2
            continue
        }
        if inClass {
            if c == UInt8(ascii: "[") && i + 1 < b.count && b[i + 1] == UInt8(ascii: ":") { return false }
            if c == UInt8(ascii: "]") { inClass = false }
            i += 1
            continue
        }
        switch c {
        case UInt8(ascii: "["):
            inClass = true
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "^") { i += 1 }
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1 }
            continue
        case UInt8(ascii: "("):
            if i + 1 < b.count, b[i + 1] == UInt8(ascii: "*") { return false }
            if i + 2 < b.count, b[i + 1] == UInt8(ascii: "?") {
                let k = b[i + 2]
                if [UInt8(ascii: "#"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: "|"), UInt8(ascii: "&"),
                    UInt8(ascii: "R"), UInt8(ascii: "+"), UInt8(ascii: "-")].contains(k) || (k >= 48 && k <= 57) { return false }
                if k == UInt8(ascii: "P"), i + 3 < b.count, b[i + 3] != UInt8(ascii: "<") { return false }
                // Inline flags: only i, m, s (not x: extended mode changes what a space means).
                var j = i + 2
                while j < b.count, (b[j] | 0x20) >= 97, (b[j] | 0x20) <= 122 {
                    if b[j] == UInt8(ascii: "x") || b[j] == UInt8(ascii: "n") || b[j] == UInt8(ascii: "J") || b[j] == UInt8(ascii: "U") { return false }
                    j += 1
                }
            }
        case UInt8(ascii: "{"):
            // Only {n}, {n,}, {n,m}, {,m}.
            var j = i + 1, digits = 0, commas = 0
            while j < b.count, b[j] != UInt8(ascii: "}") {
                if b[j] >= 48 && b[j] <= 57 { digits += 1 } else if b[j] == UInt8(ascii: ",") { commas += 1 } else { return false }
                j += 1
            }
            if j >= b.count || digits == 0 || commas > 1 { return false }
        default: break
        }
        i += 1
    }
    return true
}

/// Text nearly every user agent contains: a literal inside it says little.
private let commonText = Array("mozilla/5.0 (windows nt 10.0; win64; x64) (linux; android 10; k; wv) (iphone; cpu iphone os like mac os x) applewebkit/537.36 (khtml, like gecko) version/4.0 chrome/120.0.0.0 mobile safari/537.36 build/".utf8)

/// The most selective of alternative requirement sets: scored by its shortest member (a member
/// found in `commonText` counts a third), less one per extra member.
private func bestRequirement(_ sets: [[[UInt8]]]) -> [[UInt8]]? {
    func score(_ set: [[UInt8]]) -> Int {
        let weakest = set.map { text in
            commonText.withUnsafeBufferPointer { h in
                var found = false
                if text.count <= h.count {
                    for start in 0...(h.count - text.count) where h[start] == text[0] && Array(h[start..<start + text.count]) == text { found = true; break }
                }
                return found ? text.count / 3 : text.count
            }
        }.min()!
        return weakest - (set.count - 1)
    }
    let usable = sets.filter { !$0.isEmpty && $0.allSatisfy { $0.count >= 2 } }
    return usable.max { score($0) < score($1) }
}

/// Requirements of the sequence starting at `i`, up to its closing ")" (not consumed) or the
/// end: a list of sets, each set satisfied when one of its texts occurs.
private func requirements(_ b: [UInt8], _ i: inout Int) -> [[[UInt8]]] {
    var branches: [[[[UInt8]]]] = []
    var sets: [[[UInt8]]] = []
    var current: [UInt8] = []
    func flush() { if !current.isEmpty { sets.append([current]); current = [] } }
    /// Skips a quantifier at `i`; tells whether it lets the atom before it be absent.
    func quantifier() -> (present: Bool, optional: Bool) {
        guard i < b.count else { return (false, false) }
        var optional = false
        switch b[i] {
        case UInt8(ascii: "?"), UInt8(ascii: "*"): optional = true; i += 1
        case UInt8(ascii: "+"): i += 1
        case UInt8(ascii: "{"):
            var j = i + 1
            while j < b.count, b[j] != UInt8(ascii: "}"), (b[j] >= 48 && b[j] <= 57) || b[j] == UInt8(ascii: ",") { j += 1 }
            guard j < b.count, b[j] == UInt8(ascii: "}"), j > i + 1 else { return (false, false) }  // a literal "{"
            optional = b[i + 1] == UInt8(ascii: "0") || b[i + 1] == UInt8(ascii: ",")
            i = j + 1
        default: return (false, false)
        }
        if i < b.count, b[i] == UInt8(ascii: "?") || b[i] == UInt8(ascii: "+") { i += 1 }  // lazy, possessive
        return (true, optional)
    }
    func literal(_ original: UInt8) {
        let byte = original >= 65 && original <= 90 ? original | 0x20 : original
        let q = quantifier()
        if q.present {
            if !q.optional { current.append(byte) }
            flush()
        } else {
            current.append(byte)
        }
    }
    func combined() -> [[[UInt8]]] {
        flush()
        branches.append(sets)
        if branches.count == 1 { return branches[0] }
        // An alternation: one of the branches matched, so one of their best sets' texts occurs.
        var union: [[UInt8]] = []
        for branch in branches {
            guard let best = bestRequirement(branch) else { return [] }
            for text in best where !union.contains(text) { union.append(text) }
        }
        return [union]
    }
    while i < b.count {
        let c = b[i]
        switch c {
        case UInt8(ascii: ")"):
            return combined()
        case UInt8(ascii: "|"):
            flush(); branches.append(sets); sets = []; i += 1
        case UInt8(ascii: "("):
            flush()
            i += 1
            var lookaround = false, flagsOnly = false
            if i < b.count, b[i] == UInt8(ascii: "?") {
                i += 1
                if i < b.count {
                    switch b[i] {
                    case UInt8(ascii: ":"), UInt8(ascii: ">"): i += 1
                    case UInt8(ascii: "="), UInt8(ascii: "!"): lookaround = true; i += 1
                    case UInt8(ascii: "<"):
                        if i + 1 < b.count, b[i + 1] == UInt8(ascii: "=") || b[i + 1] == UInt8(ascii: "!") { lookaround = true; i += 2 }
                        else { while i < b.count, b[i] != UInt8(ascii: ">") { i += 1 }; i += 1 }  // named group
                    case UInt8(ascii: "P"):
                        while i < b.count, b[i] != UInt8(ascii: ">") { i += 1 }; i += 1
                    default:
                        // Inline flags: "(?i)" or "(?i:…)".
                        while i < b.count, b[i] != UInt8(ascii: ")"), b[i] != UInt8(ascii: ":") { i += 1 }
                        if i < b.count, b[i] == UInt8(ascii: ")") { flagsOnly = true }
                        i += 1
                    }
                }
            }
            if flagsOnly { continue }
            let inner = requirements(b, &i)
            i += 1  // the ")"
            let q = quantifier()
            if !lookaround, !q.optional { sets += inner }
        case UInt8(ascii: "["):
            flush()
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "^") { i += 1 }
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1 }
            while i < b.count, b[i] != UInt8(ascii: "]") { i += b[i] == UInt8(ascii: "\\") ? 2 : 1 }
            i += 1
            _ = quantifier()
        case UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "$"):
            flush(); i += 1
            _ = quantifier()
        case UInt8(ascii: "\\"):
            guard i + 1 < b.count else { i += 1; flush(); break }
            let e = b[i + 1]
            i += 2
            let isLetterOrDigit = (e >= 48 && e <= 57) || ((e | 0x20) >= 97 && (e | 0x20) <= 122)
            if isLetterOrDigit {
                flush(); _ = quantifier()
            } else {
                literal(e)
            }
        default:
            i += 1
            literal(c)
        }
    }
    return combined()
}
