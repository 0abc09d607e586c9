import Foundation
import HTTPTypes
public import NIOCore
public import NIOHTTPTypes

/// Bounds how long a client may hold a connection without sending a request, and how long it
/// may take to send one; refuses transfer codings other than `chunked`.
///
/// First in the HTTP/1 pipeline after the codec (before ``EventIngestHandler``), so it sees every
/// request and every answer:
/// - waiting for a request head (a new connection, or a kept-alive one after its last answer):
///   closed after `idleTimeout`. A head that arrives a byte at a time never completes, so this is
///   also the header timeout;
/// - reading a request, from its head to its end: closed after `bodyTimeout`, however the bytes
///   trickle in;
/// - while an answer is being produced or streamed (a live view), no deadline applies.
///
/// A `Transfer-Encoding` other than `chunked` (`gzip, chunked`) is answered 400 and the connection
/// closed, before anything else reads the request.
public final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    public static let defaultIdleTimeout = TimeAmount.seconds(30)
    public static let defaultBodyTimeout = TimeAmount.seconds(30)

    private let idleTimeout: TimeAmount
    private let bodyTimeout: TimeAmount
    /// Requests whose head was read and whose answer has not ended.
    private var pending = 0
    private var reading = false
    /// A refused request: its remaining parts are dropped and the connection closes.
    private var refused = false
    /// When the connection closes unless something moves it on; nil while an answer is produced.
    private var deadline: NIODeadline?
    /// One timer per connection, re-armed only when it fires: a request updates `deadline` (a
    /// clock read), not a timer (scheduling and cancelling one per request cost ~10 % of the
    /// ingestion throughput in `make bench`).
    private var timer: Scheduled<Void>?

    public init(idleTimeout: TimeAmount = ConnectionGuard.defaultIdleTimeout, bodyTimeout: TimeAmount = ConnectionGuard.defaultBodyTimeout) {
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { expect(context, within: idleTimeout) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) { stopTimer() }

    public func channelActive(context: ChannelHandlerContext) {
        expect(context, within: idleTimeout)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        stopTimer()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let coding = head.headerFields[.transferEncoding], coding.lowercased().trimmingCharacters(in: .whitespaces) != "chunked" {
                refuse(context, "Transfer-Encoding \(coding.prefix(40)) is not supported; send the body plain or chunked")
                return
            }
            pending += 1
            reading = true
            expect(context, within: bodyTimeout)
        case .body:
            break
        case .end:
            reading = false
            // Answered before its end (a 413, a 404): the connection waits for the next head now.
            if pending == 0 { expect(context, within: idleTimeout) } else { deadline = nil }
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            pending = max(0, pending - 1)
            if pending == 0 && !reading { expect(context, within: idleTimeout) }
        }
        context.write(data, promise: promise)
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: String) {
        refused = true
        deadline = nil
        // Answers go out in request order: with earlier requests unanswered, just close.
        guard pending == 0 else {
            context.close(promise: nil)
            return
        }
        var body = context.channel.allocator.buffer(capacity: reason.utf8.count + 16)
        body.writeString("{\"error\":\"\(reason.filter { $0 != "\"" && $0 != "\\" })\"}")
        let head = HTTPResponse(status: .badRequest, headerFields: [.contentType: "application/json", .connection: "close",
                                                                     .contentLength: String(body.readableBytes)])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    /// The connection must move on (a head, a request's end) within `after`.
    private func expect(_ context: ChannelHandlerContext, within after: TimeAmount) {
        let due = NIODeadline.now() + after
        deadline = due
        if timer == nil { schedule(context, at: due) }
    }

    private func schedule(_ context: ChannelHandlerContext, at due: NIODeadline) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) { [self] in
            timer = nil
            guard let deadline else {
                // An answer is being produced: look again later.
                schedule(context, at: .now() + idleTimeout)
                return
            }
            if NIODeadline.now() >= deadline { context.close(promise: nil) } else { schedule(context, at: deadline) }
        }
    }

    private func stopTimer() {
        timer?.cancel()
        timer = nil
        deadline = nil
    }
}
