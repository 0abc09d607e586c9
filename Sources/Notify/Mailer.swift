import CCurl
public import Foundation

/// E-mail over SMTP with libcurl (Debian `libcurl4-openssl-dev`): `smtp://user:pass@host:port`
/// (STARTTLS as `starttls` says) or `smtps://…` (TLS from the start), authentication from the
/// URL's user and password.
public struct Mailer: Sendable {
    public enum StartTLS: String, Sendable, CaseIterable {
        /// Refuse to send over a connection STARTTLS did not protect (the default).
        case required
        /// Use STARTTLS when the server offers it.
        case opportunistic
        /// Never (a mail relay on the same machine).
        case off
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let url: String
    public let from: String
    public let startTLS: StartTLS
    public let timeoutSeconds: Int

    public init(url: String, from: String, startTLS: StartTLS = .required, timeoutSeconds: Int = 30) throws(Failure) {
        guard let parsed = URL(string: url), ["smtp", "smtps"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw Failure(description: "the SMTP URL is smtp://[user:password@]host[:port] or smtps://…")
        }
        guard Self.isAddress(from) else { throw Failure(description: "the sender \(from.prefix(100)) is not an e-mail address") }
        self.url = url
        self.from = from
        self.startTLS = startTLS
        self.timeoutSeconds = timeoutSeconds
    }

    /// A plain address: no spaces, angle brackets or line breaks (nothing that could add a header
    /// or an SMTP command).
    public static func isAddress(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        return s.count <= 254 && parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty
            && s.unicodeScalars.allSatisfy { $0.value > 32 && $0.value < 127 && !"<>()[],;:\\\"".unicodeScalars.contains($0) }
    }

    /// An attachment: file name, media type, bytes.
    public struct Attachment: Sendable {
        public var name: String
        public var type: String
        public var bytes: [UInt8]
        public init(name: String, type: String, bytes: [UInt8]) { self.name = name; self.type = type; self.bytes = bytes }
    }

    /// Sends one message to `to`, off the caller's thread (libcurl blocks).
    public func send(to: [String], subject: String, text: String, attachments: [Attachment] = [], date: Date = Date()) async throws {
        guard !to.isEmpty, to.allSatisfy(Self.isAddress) else { throw Failure(description: "no valid recipient") }
        let message = Self.message(from: from, to: to, subject: subject, text: text, attachments: attachments, date: date)
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global(qos: .utility).async {
                do { try self.transfer(to: to, message: message); c.resume() } catch { c.resume(throwing: error) }
            }
        }
    }

    func transfer(to: [String], message: [UInt8]) throws {
        guard let curl = curl_easy_init() else { throw Failure(description: "libcurl could not start") }
        defer { curl_easy_cleanup(curl) }
        var recipients: UnsafeMutablePointer<curl_slist>?
        for r in to { recipients = curl_slist_append(recipients, "<\(r)>") }
        defer { curl_slist_free_all(recipients) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let rc: CURLcode = message.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                // libcurl keeps the upload's address until the transfer ends: memory of our own, not an inout pointer.
                let upload = UnsafeMutablePointer<candor_upload>.allocate(capacity: 1)
                upload.initialize(to: candor_upload(data: chars.baseAddress, length: chars.count, offset: 0))
                defer { upload.deinitialize(count: 1); upload.deallocate() }
                return errorBuffer.withUnsafeMutableBufferPointer { err in
                    var rc = candor_setopt_string(curl, CURLOPT_URL, url)
                    if rc == CURLE_OK { rc = candor_setopt_string(curl, CURLOPT_MAIL_FROM, "<\(from)>") }
                    if rc == CURLE_OK { rc = candor_setopt_list(curl, CURLOPT_MAIL_RCPT, recipients) }
                    let ssl: Int = switch startTLS { case .required: Int(CURLUSESSL_ALL.rawValue); case .opportunistic: Int(CURLUSESSL_TRY.rawValue); case .off: Int(CURLUSESSL_NONE.rawValue) }
                    if rc == CURLE_OK { rc = candor_setopt_long(curl, CURLOPT_USE_SSL, ssl) }
                    if rc == CURLE_OK { rc = candor_setopt_long(curl, CURLOPT_TIMEOUT, timeoutSeconds) }
                    if rc == CURLE_OK { rc = candor_setopt_long(curl, CURLOPT_NOSIGNAL, 1) }
                    if rc == CURLE_OK { rc = candor_setopt_string(curl, CURLOPT_ERRORBUFFER, err.baseAddress) }
                    if rc == CURLE_OK { rc = candor_setopt_upload(curl, upload) }
                    return rc == CURLE_OK ? curl_easy_perform(curl) : rc
                }
            }
        }
        guard rc == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw Failure(description: "SMTP: \(String(cString: curl_easy_strerror(rc)))\(detail.isEmpty ? "" : ": " + detail)")
        }
    }

    /// The RFC 5322 message: text, and attachments as base64 MIME parts. Header values are
    /// cleaned of line breaks; a subject with non-ASCII characters is RFC 2047 encoded.
    static func message(from: String, to: [String], subject: String, text: String, attachments: [Attachment], date: Date) -> [UInt8] {
        func clean(_ s: String) -> String { String(s.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }.map(Character.init)).prefix(300).description }
        let subjectLine = clean(subject).unicodeScalars.allSatisfy({ $0.isASCII })
            ? clean(subject) : "=?UTF-8?B?\(Data(clean(subject).utf8).base64EncodedString())?="
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let boundary = "candor-" + UUID().uuidString
        let domain = from.split(separator: "@").last.map(String.init) ?? "localhost"
        var head = "From: \(from)\r\nTo: \(to.joined(separator: ", "))\r\nSubject: \(subjectLine)\r\nDate: \(formatter.string(from: date))\r\n"
            + "Message-ID: <\(UUID().uuidString.lowercased())@\(domain)>\r\nMIME-Version: 1.0\r\n"
        let body = Data(text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n").utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        if attachments.isEmpty {
            head += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body + "\r\n"
            return Array(head.utf8)
        }
        head += "Content-Type: multipart/mixed; boundary=\"\(boundary)\"\r\n\r\n"
        head += "--\(boundary)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body + "\r\n"
        for a in attachments {
            let name = clean(a.name).filter { $0.isLetter || $0.isNumber || "-_.".contains($0) }
            head += "--\(boundary)\r\nContent-Type: \(clean(a.type)); name=\"\(name)\"\r\nContent-Disposition: attachment; filename=\"\(name)\"\r\n"
                + "Content-Transfer-Encoding: base64\r\n\r\n"
                + Data(a.bytes).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed]) + "\r\n"
        }
        head += "--\(boundary)--\r\n"
        return Array(head.utf8)
    }
}
