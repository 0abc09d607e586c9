import HTTPTypes
public import NIOCore
public import NIOHTTPTypes
import Store

/// Serves `POST /api/event` on the connection's event loop, ahead of the router.
///
/// It sits in the HTTP/1 channel pipeline after the HTTP codec. Event requests are read, run
/// through the same ingestion steps as the router's route (``Collector/admitEvents(body:headers:peer:path:)``),
/// handed to the writer, and answered from the writer's completion, back on the event loop: no
/// task, no router, no request/response objects, and still no answer before the commit. Every
/// other request passes through untouched to the router.
///
/// Pipelined requests are answered in order: a request is started only once the previous one
/// has been read to its end and answered (its answer's end seen going out, for the router's
/// requests). Parts that arrive meanwhile wait in a queue, and reading from the socket pauses
/// while they wait.
public final class EventIngestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// A request for the router: its parts pass through; done when both its end has been
        /// passed on and its answer's end has gone out.
        case passing(requestEnded: Bool, answered: Bool)
        /// Reading an event request's body (or, when `refused` is set, discarding it).
        case reading(head: HTTPRequest, body: ByteBuffer?, refused: IngestAnswer?)
        /// Answered 413 before the end of the body: the rest of the body is ignored.
        case discarding
        /// Waiting for the writer's commit.
        case committing(closeAfter: Bool)
    }

    static let path = "/api/event"

    private let collector: Collector
    private var state = State.idle
    /// Parts received while the current request is not finished.
    private var queue = CircularBuffer<HTTPRequestPart>()
    /// A socket read the channel asked for while parts were waiting; issued once they are taken.
    private var readHeld = false
    private var active = true
    /// A graceful-shutdown notice that arrived while an event request was in progress; passed
    /// on once it is answered (the answer says `Connection: close`).
    private var quiesceHeld = false

    public init(collector: Collector) { self.collector = collector }

    static func isEventRequest(_ head: HTTPRequest) -> Bool {
        guard head.method == .post, let path = head.path else { return false }
        return path == Self.path || path.hasPrefix(Self.path + "?")
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        queue.append(unwrapInboundIn(data))
        pump(context: context, inRead: true)
    }

    /// Takes queued parts as long as the current request lets the next part be handled. Outside
    /// a socket read (`inRead` false), parts passed on are followed by a read-complete, which
    /// is when the router's side takes them.
    private func pump(context: ChannelHandlerContext, inRead: Bool) {
        var passedOn = false
        defer { if passedOn && !inRead { context.fireChannelReadComplete() } }
        while active, let part = queue.first {
            switch state {
            case .idle:
                queue.removeFirst()
                guard case .head(let head) = part else {
                    // The decoder only ever starts a request with its head.
                    context.close(promise: nil)
                    return
                }
                if Self.isEventRequest(head) {
                    startEventRequest(head, context: context)
                } else {
                    state = .passing(requestEnded: false, answered: false)
                    context.fireChannelRead(wrapInboundOut(part))
                    passedOn = true
                }
            case .passing(requestEnded: false, let answered):
                queue.removeFirst()
                if case .end = part { state = answered ? .idle : .passing(requestEnded: true, answered: false) }
                context.fireChannelRead(wrapInboundOut(part))
                passedOn = true
            case .passing(requestEnded: true, _), .committing:
                // The next request waits for this one's answer.
                return
            case .discarding:
                queue.removeFirst()
                if case .end = part { state = .idle }
            case .reading(let head, let body, let refused):
                queue.removeFirst()
                read(part, head: head, body: body, refused: refused, context: context)
            }
        }
        if readHeld, queue.isEmpty {
            readHeld = false
            context.read()
        }
    }

    private func startEventRequest(_ head: HTTPRequest, context: ChannelHandlerContext) {
        let refused = collector.checkEventHead(head.headerFields, path: Self.path)
        if let refused, refused.status == .contentTooLarge {
            state = .discarding
            send(refused, closeAfter: false, context: context)
            return
        }
        state = .reading(head: head, body: nil, refused: refused)
    }

    private func read(_ part: HTTPRequestPart, head: HTTPRequest, body: ByteBuffer?, refused: IngestAnswer?,
                      context: ChannelHandlerContext) {
        switch part {
        case .head:
            // A head inside a request cannot come from the HTTP decoder.
            context.close(promise: nil)
        case .body(var chunk):
            guard refused == nil else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > WireLimits.maxBodyBytes {
                state = .discarding
                send(collector.tooLarge(path: Self.path), closeAfter: false, context: context)
                return
            }
            var body = body
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
            state = .reading(head: head, body: body, refused: nil)
        case .end:
            let closeAfter = head.headerFields[.connection]?.lowercased() == "close"
            if let refused {
                finishRequest(refused, closeAfter: closeAfter, context: context)
                return
            }
            let step = collector.admitEvents(body: body ?? ByteBuffer(), headers: head.headerFields,
                                             peer: context.channel.remoteAddress, path: Self.path)
            switch step {
            case .answer(let answer):
                finishRequest(answer, closeAfter: closeAfter, context: context)
            case .commit(let pending):
                state = .committing(closeAfter: closeAfter)
                let loop = context.eventLoop
                let bound = NIOLoopBound((self, context), eventLoop: loop)
                let collector = collector
                collector.writer.enqueue(pending.rows, tally: pending.tally) { outcomes in
                    loop.execute {
                        let (handler, context) = bound.value
                        handler.finishRequest(collector.finish(pending, outcomes: outcomes, path: Self.path),
                                              closeAfter: closeAfter, context: context)
                        handler.pump(context: context, inRead: false)
                    }
                }
            }
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            switch state {
            case .reading, .committing:
                quiesceHeld = true
                return
            case .idle, .passing, .discarding:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        active = false
        queue.removeAll()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        active = false
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), case .passing(let requestEnded, _) = state {
            // The router's answer is complete: the next request may start.
            state = requestEnded ? .idle : .passing(requestEnded: false, answered: true)
            context.write(data, promise: promise)
            if requestEnded, !queue.isEmpty {
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.execute { bound.value.0.pump(context: bound.value.1, inRead: false) }
            }
            return
        }
        context.write(data, promise: promise)
    }

    public func read(context: ChannelHandlerContext) {
        // Parts are waiting for an earlier request: read no more until they are taken.
        if !queue.isEmpty {
            readHeld = true
            return
        }
        context.read()
    }

    // MARK: Answers

    /// Sends the answer of an event request and gets ready for the next request.
    private func finishRequest(_ answer: IngestAnswer, closeAfter: Bool, context: ChannelHandlerContext) {
        guard active else { return }
        state = .idle
        send(answer, closeAfter: closeAfter || quiesceHeld, context: context)
        if quiesceHeld {
            quiesceHeld = false
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    private func send(_ answer: IngestAnswer, closeAfter: Bool, context: ChannelHandlerContext) {
        var headers = answer.headers
        headers[.contentLength] = String(answer.body.readableBytes)
        if closeAfter {
            headers[.connection] = "close"
            active = false
            queue.removeAll()
        }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(answer.body)), promise: nil)
        if closeAfter {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
