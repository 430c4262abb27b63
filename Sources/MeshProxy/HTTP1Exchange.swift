import NIOCore
import NIOHTTP1

/// One request and its response on a client's HTTP/1 connection (`ProxyHandler`).
struct HTTP1Exchange {
    var facts: ExchangeFacts
    /// Which exchange of this connection (a late timer checks it is still the current one).
    var number: Int
    var keepAlive: Bool
    /// The client's HTTP version: its response is framed for it.
    var clientVersion: HTTPVersion
    var response = ResponsePhase.waiting
    /// Fires the 504 when the route has a timeout and the response has not begun.
    var deadline: Scheduled<Void>?
    /// The request again, for retries, and how many are left.
    var retryHead: HTTPRequestHead?
    var retriesLeft = 0
    /// The client's request has ended (its end was forwarded).
    var requestEnded = false
    /// The client asked for a WebSocket; the upstream's `101`, once it ended, starts the tunnel.
    var upgrade = false

    /// Whether the client has been sent a response head (its own, or the proxy's error then
    /// cannot be sent any more).
    var responseBegan: Bool {
        switch response {
        case .streaming, .switching: return true
        case .waiting, .discardingAttempt: return false
        }
    }
}

/// Where an exchange's response is.
enum ResponsePhase {
    /// No response head yet.
    case waiting
    /// The upstream answered 5xx and the request is retried: the rest of that answer is read
    /// and dropped, and the retry is sent once it ended.
    case discardingAttempt
    /// The upstream switched protocols (`101`): once the head ended, the tunnel starts.
    case switching(HTTPResponseHead)
    /// The response is being passed on to the client.
    case streaming
}

/// Where the client's current request is, on this connection.
enum HTTP1RequestPhase {
    /// Between requests, or the last one's body was read to its end: only then may the
    /// upstream connection that carried it be used again, and the next request begin.
    case complete
    /// Its body is being read and forwarded.
    case forwarding
    /// Its body is read and dropped: a refused request, or one answered early.
    case discarding
}
