import HTTPWire
import NIOCore

/// One request and its response on a client's HTTP/1 connection (`ProxyHandler`). A class: the
/// handler reaches it many times per request, and a struct holding the route's strings and
/// labels would be copied (and every reference in it retained) each time.
final class HTTP1Exchange {
    var facts: ExchangeFacts
    /// Which exchange of this connection (a late timer checks it is still the current one).
    let number: Int
    var keepAlive: Bool
    /// The client's HTTP version, 1.`clientMinor`: its response is framed for it.
    let clientMinor: Int
    /// A HEAD request: its response has no body, whatever its headers say.
    let isHead: Bool
    var response = ResponsePhase.waiting(RequestHeadParser.Scan())
    /// Fires the 504 when the route has a timeout and the response has not begun.
    var deadline: Scheduled<Void>?
    /// The request's head again, for retries, and how many are left.
    var retryHead: ByteBuffer?
    var retriesLeft = 0
    /// The client's request has ended (all of it was forwarded).
    var requestEnded = false
    /// The client asked for a WebSocket; the upstream's `101` starts the tunnel.
    var upgrade = false

    init(facts: ExchangeFacts, number: Int, keepAlive: Bool, clientMinor: Int, isHead: Bool) {
        self.facts = facts
        self.number = number
        self.keepAlive = keepAlive
        self.clientMinor = clientMinor
        self.isHead = isHead
    }

    /// Whether the client has been sent a response head (its own, or the proxy's error then
    /// cannot be sent any more).
    var responseBegan: Bool {
        switch response {
        case .streaming: return true
        case .waiting, .discardingAttempt: return false
        }
    }
}

/// Where an exchange's response is.
enum ResponsePhase {
    /// No response head yet: the upstream's bytes are searched for one.
    case waiting(RequestHeadParser.Scan)
    /// The upstream answered 5xx and the request is retried: the rest of that answer is read
    /// and dropped, and the retry is sent once it ended.
    case discardingAttempt(ResponseBody)
    /// The response is being passed on to the client.
    case streaming(ResponseBody)
}

/// An upstream response's body as it is read: how much is left, or where its chunks stand, and
/// how it goes on to the client.
struct ResponseBody {
    enum Reader {
        case none
        case length(remaining: Int64)
        case chunked(ChunkedBodyReader)
        case untilClose
    }

    var reader: Reader
    var relay: ResponseRelay
    /// Of a chunked body's data, what was counted in the response's bytes.
    var chunkedBytesCounted: Int64 = 0

    init(_ framing: ResponseFraming, relay: ResponseRelay) {
        self.relay = relay
        switch framing {
        case .none: reader = .none
        case .length(let n): reader = .length(remaining: n)
        case .chunked: reader = .chunked(ChunkedBodyReader())
        case .untilClose: reader = .untilClose
        }
    }
}

/// Where the client's bytes are, on this connection.
enum RequestReader {
    /// Between requests: the next head is searched for.
    case head(RequestHeadParser.Scan)
    /// A body of known length, this much of it left.
    case length(remaining: Int64)
    case chunked(ChunkedBodyReader)
    /// The request ended and its response has not: what arrives now (a pipelined request)
    /// waits, and the client is not read from meanwhile.
    case awaitingResponse
    /// The connection closes: whatever the client still sends is read and dropped.
    case lingering
}
