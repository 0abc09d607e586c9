import Foundation

/// Country shapes for the dashboard's map, drawn from the world map of the PyPI package
/// `pygal_maps_world` (the Makefile takes the file from its source distribution; `worldmap.svg` has one
/// `<g class="xx country map-element">` of paths per ISO 3166-1 alpha-2 code).
///
/// The shapes are simplified once, at start-up: each path's curves become their end points,
/// scaled to a 990 × 555 box and rounded to whole units, repeated points and rings of less than
/// one square unit dropped (a country left with none becomes a small square). The result is one SVG whose `<g id="land">` holds a
/// `<path id="xx">` per country (lower-case code, no fill of its own): the dashboard draws it with
/// `<use href="/world.svg#land">` and colours a country with `<use href="/world.svg#de" class="…">`.
public struct WorldMap: Sendable {
    /// Where the Makefile installs the package.
    public static let defaultSource = "/usr/local/share/candor/pygal-maps-world/1.0.2/pygal_maps_world/worldmap.svg"
    public static let width = 990, height = 555

    /// The SVG document served as `/world.svg`.
    public let svg: String
    /// Upper-case codes of the countries drawn.
    public let countries: Set<String>

    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    /// The map from `path`, nil when the file is missing (the dashboard then shows no map).
    public static func load(path: String = defaultSource) throws -> WorldMap? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try WorldMap(pygalSVG: String(decoding: data, as: UTF8.self))
    }

    public init(pygalSVG source: String, scale: Double = 0.4) throws {
        var paths: [String] = [], codes: Set<String> = []
        // Plain byte scanning: the file is 0.8 MB and read at every start.
        let bytes = Array(source.utf8)
        func find(_ needle: String, from: Int, to: Int) -> Int? {
            let n = Array(needle.utf8)
            guard to - from >= n.count else { return nil }
            var i = from
            while i + n.count <= to {
                if bytes[i] == n[0] && bytes[i..<i + n.count].elementsEqual(n) { return i }
                i += 1
            }
            return nil
        }
        let open = "<g class=\"", tail = Array(" country map-element\">".utf8)
        var cursor = 0
        while let g = find(open, from: cursor, to: bytes.count) {
            let codeStart = g + open.utf8.count, codeEnd = codeStart + 2
            cursor = codeStart
            guard codeEnd + tail.count <= bytes.count, bytes[codeStart..<codeEnd].allSatisfy({ (0x61...0x7A).contains($0) }),
                  bytes[codeEnd..<codeEnd + tail.count].elementsEqual(tail),
                  let close = find("</g>", from: codeEnd, to: bytes.count) else { continue }
            let code = String(decoding: bytes[codeStart..<codeEnd], as: UTF8.self)
            cursor = close + 4
            var rings: [[(Int, Int)]] = [], all: [(Int, Int)] = []
            var inner = codeEnd
            while let d = find(" d=\"", from: inner, to: close), let end = find("\"", from: d + 4, to: close) {
                inner = end + 1
                for ring in try Self.rings(String(decoding: bytes[d + 4..<end], as: UTF8.self)) {
                    var points: [(Int, Int)] = []
                    for (x, y) in ring {
                        let p = (Int((x * scale).rounded()), Int((y * scale).rounded()))
                        if points.last.map({ $0 != p }) ?? true { points.append(p) }
                    }
                    if points.count >= 3 && abs(Self.area(points)) >= 1 { rings.append(points) }
                    all += points
                }
            }
            // A country smaller than a unit (Singapore, Malta, Monaco…) is kept as a 3 × 3 square
            // at its middle, so it can be coloured and pointed at.
            if rings.isEmpty, !all.isEmpty {
                let x = all.map(\.0).reduce(0, +) / all.count, y = all.map(\.1).reduce(0, +) / all.count
                rings = [[(x - 1, y - 1), (x + 2, y - 1), (x + 2, y + 2), (x - 1, y + 2)]]
            }
            guard !rings.isEmpty else { continue }
            var d = ""
            for ring in rings {
                d += "M\(ring[0].0) \(ring[0].1)l"
                for (a, b) in zip(ring, ring.dropFirst()) { d += "\(b.0 - a.0) \(b.1 - a.1) " }
                d.removeLast()
                d += "z"
            }
            paths.append("<path id=\"\(code)\" d=\"\(d.replacingOccurrences(of: " -", with: "-"))\"/>")
            codes.insert(code.uppercased())
        }
        guard codes.count >= 100 else { throw Malformed(description: "the world map has \(codes.count) countries (expected about 180)") }
        svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Self.width) \(Self.height)\"><g id=\"land\">"
            + paths.joined() + "</g></svg>"
        countries = codes
    }

    /// Twice the signed area of a ring (shoelace).
    static func area(_ ring: [(Int, Int)]) -> Double {
        var sum = 0
        for i in ring.indices {
            let a = ring[i], b = ring[(i + 1) % ring.count]
            sum += a.0 * b.1 - b.0 * a.1
        }
        return Double(sum) / 2
    }

    enum Token { case command(Character), number(Double) }

    /// Path data as commands and numbers ("0.5.5" is two numbers, "1-2" too; exponents allowed).
    static func tokens(_ d: String) throws -> [Token] {
        var out: [Token] = []
        let bytes = Array(d.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x20 || b == 0x2C || b == 0x0A || b == 0x0D || b == 0x09 { i += 1; continue }
            if (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b), b != 0x65, b != 0x45 {
                out.append(.command(Character(Unicode.Scalar(b)))); i += 1; continue
            }
            let start = i
            if b == 0x2D || b == 0x2B { i += 1 }
            var dot = false
            while i < bytes.count, (0x30...0x39).contains(bytes[i]) || (bytes[i] == 0x2E && !dot) {
                if bytes[i] == 0x2E { dot = true }
                i += 1
            }
            if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
                i += 1
                if i < bytes.count, bytes[i] == 0x2D || bytes[i] == 0x2B { i += 1 }
                while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }
            }
            // Coordinates stay within ±1e6 (the map is 2,475 units wide): nothing later overflows.
            guard i > start, let v = Double(String(decoding: bytes[start..<i], as: UTF8.self)), v.isFinite, abs(v) <= 1e6 else {
                throw Malformed(description: "unreadable or out-of-range path data at byte \(start)")
            }
            out.append(.number(v))
        }
        return out
    }

    /// The rings of an SVG path, as the end points of its segments (control points dropped).
    static func rings(_ d: String) throws -> [[(Double, Double)]] {
        let arity: [Character: Int] = ["m": 2, "l": 2, "h": 1, "v": 1, "c": 6, "s": 4, "q": 4, "t": 2, "z": 0]
        let tokens = try Self.tokens(d)
        var rings: [[(Double, Double)]] = [], ring: [(Double, Double)] = []
        var x = 0.0, y = 0.0, startX = 0.0, startY = 0.0
        var command: Character?
        var i = 0
        while i < tokens.count {
            if case .command(let c) = tokens[i] {
                command = c
                i += 1
                if c == "z" || c == "Z" {
                    if !ring.isEmpty { rings.append(ring); ring = [] }
                    (x, y) = (startX, startY)
                    continue
                }
            }
            guard let c = command, let n = arity[Character(c.lowercased())], n > 0, i + n <= tokens.count else {
                throw Malformed(description: "unreadable path data near token \(i)")
            }
            let a = try tokens[i..<i + n].map { t -> Double in
                guard case .number(let v) = t else { throw Malformed(description: "a command where a number belongs, near token \(i)") }
                return v
            }
            i += n
            let relative = c.isLowercase
            switch c.lowercased() {
            case "m":
                if !ring.isEmpty { rings.append(ring) }
                (x, y) = relative ? (x + a[0], y + a[1]) : (a[0], a[1])
                (startX, startY) = (x, y)
                ring = [(x, y)]
                command = relative ? "l" : "L"   // further pairs are lines
            case "h": x = relative ? x + a[0] : a[0]; ring.append((x, y))
            case "v": y = relative ? y + a[0] : a[0]; ring.append((x, y))
            default:
                (x, y) = relative ? (x + a[n - 2], y + a[n - 1]) : (a[n - 2], a[n - 1])
                ring.append((x, y))
            }
            guard abs(x) <= 1e6, abs(y) <= 1e6 else { throw Malformed(description: "a path leaves the map (±1e6)") }
        }
        if !ring.isEmpty { rings.append(ring) }
        return rings
    }
}
