import MultipartKit

/// The parts of a `multipart/form-data` body (RFC 7578), read with Vapor's MultipartKit: the
/// webhook forms JotForm posts and the dashboard's file uploads.
public enum MultipartForm {
    public struct Part: Sendable, Equatable {
        /// The field's name and, for a file, its file name (from Content-Disposition).
        public var name: String
        public var filename: String?
        public var body: [UInt8]

        public init(name: String, filename: String?, body: [UInt8]) { self.name = name; self.filename = filename; self.body = body }
    }

    public struct Unreadable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The boundary of a `multipart/form-data` content type, nil for another type or a missing one.
    public static func boundary(contentType: String?) -> String? {
        guard let type = contentType, type.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in type.split(separator: ";").dropFirst() {
            let kv = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2, kv[0].lowercased() == "boundary" {
                let b = kv[1].trimmingCharacters(in: .init(charactersIn: "\""))
                // RFC 2046 allows 70 characters; longer ones (up to 200) were accepted before and are still read.
                return (1...200).contains(b.utf8.count) ? b : nil
            }
        }
        return nil
    }

    /// Every part, in order; at most `maxParts` (more is refused). A body without its closing
    /// delimiter is refused (MultipartKit would drop its last part silently).
    public static func parts(_ body: [UInt8], boundary: String, maxParts: Int = 100) throws -> [Part] {
        // The closing delimiter, wherever it is (an epilogue may follow it).
        let closing = Array("--\(boundary)--".utf8)
        var at = body.count - closing.count
        while at >= 0, !body[at..<(at + closing.count)].elementsEqual(closing) { at -= 1 }
        guard at >= 0 else { throw Unreadable(description: "multipart body without its closing delimiter") }
        let parser = MultipartParser(boundary: boundary)
        var parts: [Part] = []
        var current = Part(name: "", filename: nil, body: [])
        var tooMany = false
        parser.onHeader = { name, value in
            guard name.lowercased() == "content-disposition" else { return }
            current.name = parameter("name", of: value) ?? ""
            // A file name is one line of at most 200 characters.
            current.filename = parameter("filename", of: value).map { String($0.filter { !$0.isNewline && $0 != "\u{0}" }.prefix(200)) }
        }
        parser.onBody = { buffer in current.body += buffer.readableBytesView }
        parser.onPartComplete = {
            if parts.count < maxParts { parts.append(current) } else { tooMany = true }
            current = Part(name: "", filename: nil, body: [])
        }
        do { try parser.execute(body) } catch { throw Unreadable(description: "malformed multipart body") }
        if tooMany { throw Unreadable(description: "more than \(maxParts) parts") }
        return parts
    }

    /// A parameter of a Content-Disposition value (`form-data; name="a"; filename="b.csv"`).
    static func parameter(_ key: String, of value: String) -> String? {
        for item in value.split(separator: ";").dropFirst() {
            let kv = item.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces).lowercased() == key else { continue }
            var v = kv[1].trimmingCharacters(in: .whitespaces)
            if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = String(v.dropFirst().dropLast()) }
            return v
        }
        return nil
    }
}
