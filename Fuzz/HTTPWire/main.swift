/// libFuzzer entry: any bytes as a request on a proxy's socket, arriving in pieces, and the same
/// bytes as an upstream's response. The head is found, parsed and planned; a chunked body is read.
/// Nothing may trap, and what HTTPWire accepts must be consistent: the same head however the bytes
/// are split, a forwarded head that parses again to the same plan (or, for a response, frames its
/// body as the proxy relays it), and the same body data read in pieces or at once.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let step = Int(data[0] % 16) + 1
    let raw = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    response(raw, step: step, toHead: data[0] & 0x10 != 0, clientMinor: data[0] & 0x20 != 0 ? 0 : 1)
    let whole = headLength(raw, step: raw.count)
    precondition(headLength(raw, step: step) == whole, "the head's end depends on how the bytes arrived")
    sameAsByteByByte(raw, from: step - 1)
    guard case .found(let end)? = whole, let head = try? RequestHeadParser.parse(Array(raw[0..<end])),
          let plan = try? head.plan() else { return 0 }
    let forwarded = head.forwarded(plan, authority: "web.fuzz:8080", extra: [("l5d-tap-id", "fuzz.1")])
    var scan = RequestHeadParser.Scan()
    let again = try? forwarded.withUnsafeBytes { b throws in try RequestHeadParser.headLength(b, &scan) }
    precondition(again == forwarded.count, "the forwarded head is not one head")
    precondition(forwarded.count <= end + 512, "the forwarded head grew by more than the proxy's own fields")
    let reparsed = try! RequestHeadParser.parse(forwarded, maxFields: RequestHeadParser.maxFields + RequestHeadParser.proxyAddedFields)
    let replan = try! reparsed.plan()
    // (A POST, PUT or PATCH without a body is forwarded with `content-length: 0`: no body either way.)
    let same = replan.framing == plan.framing || (plan.framing == .none && replan.framing == .length(0))
    precondition(same && replan.upgrade == plan.upgrade && replan.host == plan.host ?? "web.fuzz:8080",
                 "the forwarded head frames the request differently")
    if plan.framing == .chunked {
        let body = Array(raw[end...])
        let once = chunked(body, step: body.count)
        precondition(chunked(body, step: step) == once, "the body depends on how the bytes arrived")
    }
    return 0
}

enum Found: Equatable {
    case found(Int)
    case refused(Int)
}

func headLength(_ raw: [UInt8], step: Int) -> Found? {
    var scan = RequestHeadParser.Scan()
    var have = 0
    while have < raw.count {
        have = min(raw.count, have + step)
        do {
            if let n = try raw[0..<have].withUnsafeBytes({ b throws in try RequestHeadParser.headLength(b, &scan) }) {
                return .found(n)
            }
        } catch {
            return .refused((error as? WireRefusal)?.status ?? 0)
        }
    }
    return nil
}

struct BodyRead: Equatable {
    var data: [UInt8] = []
    var taken = 0
    var refused: Int?
    var done = false
}

func chunked(_ body: [UInt8], step: Int) -> BodyRead {
    var reader = ChunkedBodyReader()
    var out = BodyRead()
    while out.taken < body.count, !reader.isDone {
        let piece = Array(body[out.taken..<min(body.count, out.taken + max(1, step))])
        do {
            out.taken += try piece.withUnsafeBytes { b throws in try reader.read(b) { out.data += piece[$0] } }
        } catch {
            // Refused: how much was read before depends on the pieces; that it is refused must not.
            return BodyRead(refused: (error as? WireRefusal)?.status ?? 0)
        }
    }
    out.done = reader.isDone
    return out
}

/// The bytes as an upstream's response to a request (a HEAD, or not) from an HTTP/1.`clientMinor` client.
func response(_ raw: [UInt8], step: Int, toHead: Bool, clientMinor: Int) {
    func length(_ step: Int) -> Found? {
        var scan = RequestHeadParser.Scan()
        var have = 0
        while have < raw.count {
            have = min(raw.count, have + step)
            do {
                if let n = try raw[0..<have].withUnsafeBytes({ b throws in try ResponseHeadParser.headLength(b, &scan) }) { return .found(n) }
            } catch {
                return .refused((error as? WireRefusal)?.status ?? 0)
            }
        }
        return nil
    }
    let whole = length(raw.count)
    precondition(length(step) == whole, "the response head's end depends on how the bytes arrived")
    guard case .found(let end)? = whole, let head = try? ResponseHeadParser.parse(Array(raw[0..<end])),
          let framing = try? head.framing(requestWasHead: toHead) else { return }
    let out = head.forwarded(framing, clientMinor: clientMinor, keepAlive: true)
    var scan = RequestHeadParser.Scan()
    let again = try? out.head.withUnsafeBytes { b throws in try ResponseHeadParser.headLength(b, &scan) }
    precondition(again == out.head.count, "the forwarded response head is not one head")
    // (The next hop is a proxy's outbound, which allows the fields a proxy adds.)
    let reparsed = try! ResponseHeadParser.parse(out.head, maxFields: ResponseHeadParser.maxFields + RequestHeadParser.proxyAddedFields)
    precondition(reparsed.status == head.status, "the forwarded response changed its status")
    let seen = try! reparsed.framing(requestWasHead: toHead)
    let expected: ResponseFraming = switch out.relay {
    case .none: .none
    case .length(let n): .length(n)
    case .chunked, .untilClose(chunked: true): .chunked
    case .dechunked, .untilClose(chunked: false): .untilClose
    }
    precondition(seen == expected, "the client would read the body's end elsewhere than the proxy writes it")
    precondition(out.close == !reparsed.keepAlive, "the forwarded response says something else about the connection than the proxy does")
}

/// The word-at-a-time scans agree with the byte-at-a-time reading they replaced: where a line
/// ends, and the fields of a head (or the refusal) from any start.
func sameAsByteByByte(_ raw: [UInt8], from start: Int) {
    guard start < raw.count else { return }
    var naive = start
    while naive < raw.count, raw[naive] != 13, raw[naive] != 10 { naive += 1 }
    precondition(raw.withUnsafeBytes { firstLineEnd($0, from: start) } == naive, "firstLineEnd disagrees")
    var fields: [WireField] = [WireField(name: 0..<1, value: 0..<1)]  // emptied by the parser
    let fast: Result<[WireField], WireRefusal>
    do {
        try parseFields(raw, from: start, maxFields: 100, into: &fields)
        fast = .success(fields)
    } catch {
        fast = .failure(error as! WireRefusal)
    }
    let slow = referenceFields(raw, from: start, maxFields: 100)
    switch (fast, slow) {
    case (.success(let a), .success(let b)): precondition(a == b, "the fields differ")
    case (.failure(let a), .failure(let b)): precondition(a.status == b.status, "the refusals differ")
    default: preconditionFailure("one reading refused what the other took: \(fast) / \(slow)")
    }
    for c in UInt8.min...UInt8.max { precondition(isTokenByteMasked(c) == isTokenByte(c)) }
}

/// The field lines read a byte at a time, as before the word-at-a-time scans.
func referenceFields(_ head: [UInt8], from start: Int, maxFields: Int) -> Result<[WireField], WireRefusal> {
    let n = head.count
    var i = start
    var fields: [WireField] = []
    while true {
        guard i + 1 < n else { return .failure(WireRefusal(400, "")) }
        if head[i] == 13 { return head[i + 1] == 10 && i + 2 == n ? .success(fields) : .failure(WireRefusal(400, "")) }
        if head[i] == 32 || head[i] == 9 { return .failure(WireRefusal(400, "")) }
        let nameStart = i
        while i < n, isTokenByte(head[i]) { i += 1 }
        guard i < n, head[i] == 58, i > nameStart else { return .failure(WireRefusal(400, "")) }
        let name = nameStart..<i
        i += 1
        while i < n, head[i] == 32 || head[i] == 9 { i += 1 }
        let valueStart = i
        var valueEnd = i
        while i < n, head[i] != 13 {
            let c = head[i]
            guard c == 9 || c >= 32, c != 127 else { return .failure(WireRefusal(400, "")) }
            i += 1
            if c != 32, c != 9 { valueEnd = i }
        }
        guard i + 1 < n, head[i + 1] == 10 else { return .failure(WireRefusal(400, "")) }
        i += 2
        fields.append(WireField(name: name, value: valueStart..<valueEnd))
        if fields.count > maxFields { return .failure(WireRefusal(431, "")) }
    }
}
