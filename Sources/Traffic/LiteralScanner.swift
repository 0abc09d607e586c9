/// Finds which of many literal byte strings occur in a subject in one pass over it
/// (Aho–Corasick): the prefilter of a `PatternList` asks about a thousand literals per user
/// agent, which one search each would make the dominant cost.
struct LiteralScanner: Sendable {
    private var children: [[(byte: UInt8, node: Int32)]] = [[]]
    private var rootChildren = [Int32](repeating: 0, count: 256)
    private var fail: [Int32] = [0]
    /// Literal ids ending at each node.
    private var outputs: [[Int32]] = [[]]
    /// The nearest proper suffix node with outputs, or -1.
    private var outputLink: [Int32] = [-1]
    let count: Int

    init(_ literals: [[UInt8]]) {
        count = literals.count
        for (id, text) in literals.enumerated() {
            var node: Int32 = 0
            for byte in text {
                if let next = child(node, byte) { node = next; continue }
                let created = Int32(children.count)
                children.append([]); fail.append(0); outputs.append([]); outputLink.append(-1)
                children[Int(node)].append((byte, created))
                if node == 0 { rootChildren[Int(byte)] = created }
                node = created
            }
            outputs[Int(node)].append(Int32(id))
        }
        // Breadth first: a node's failure link is the longest proper suffix that is in the trie.
        var queue: [Int32] = children[0].map(\.node)
        var head = 0
        while head < queue.count {
            let u = queue[head]; head += 1
            for (byte, v) in children[Int(u)] {
                var f = fail[Int(u)]
                var target: Int32? = nil
                while true {
                    if let t = child(f, byte), t != v { target = t; break }
                    if f == 0 { break }
                    f = fail[Int(f)]
                }
                let link = target ?? 0
                fail[Int(v)] = link
                outputLink[Int(v)] = outputs[Int(link)].isEmpty ? outputLink[Int(link)] : link
                queue.append(v)
            }
        }
    }

    private func child(_ node: Int32, _ byte: UInt8) -> Int32? {
        if node == 0 { let t = rootChildren[Int(byte)]; return t == 0 ? nil : t }
        for (b, n) in children[Int(node)] where b == byte { return n }
        return nil
    }

    /// Which literals occur in `subject`: flags indexed by literal id.
    func present(in subject: [UInt8]) -> [Bool] {
        var found = [Bool](repeating: false, count: count)
        var state: Int32 = 0
        for byte in subject {
            while true {
                if let next = child(state, byte) { state = next; break }
                if state == 0 { break }
                state = fail[Int(state)]
            }
            var node = state
            while node > 0 {
                for id in outputs[Int(node)] { found[Int(id)] = true }
                node = outputLink[Int(node)]
            }
        }
        return found
    }
}
