import Foundation
import Testing
@testable import MeshTap
import MeshTesting

/// JSONTree is what the proxy (tap filters, `POST /split`) and meshtop's tap decoder read JSON
/// with, instead of Foundation's JSONSerialization; these hold it to what JSONSerialization
/// makes of the same bytes.
@Suite struct JSONTreeTests {
    @Test func valuesComeOutAsThePlainTypesCallersCastTo() throws {
        let text = #"{"s":"é\u00e9\n\ud83d\ude00","i":42,"neg":-7,"f":1.5,"e":1e3,"big":1e300,"huge":123456789012345678901234,"t":true,"n":null,"a":[1,"x",[false]],"o":{"k":{}}}"#
        let o = try #require(JSONTree.object(Array(text.utf8)))
        #expect(o["s"] as? String == "éé\n😀")
        #expect(o["i"] as? Int == 42)
        #expect(o["neg"] as? Int == -7)
        #expect(o["f"] as? Double == 1.5)
        #expect(o["e"] as? Double == 1000)
        #expect(o["big"] as? Double == 1e300)
        #expect(o["huge"] as? Double == 123456789012345678901234.0)
        #expect(o["t"] as? Bool == true)
        #expect(o["t"] as? Int == nil, "a boolean is not a number")
        #expect(o["n"] is JSONTree.Null)
        let a = try #require(o["a"] as? [Any])
        #expect(a.count == 3 && a[0] as? Int == 1 && a[1] as? String == "x" && (a[2] as? [Any])?.first as? Bool == false)
        #expect(((o["o"] as? [String: Any])?["k"] as? [String: Any])?.isEmpty == true)
    }

    @Test(arguments: ["", " ", "{", "[1,]", "[1,2", "{\"a\":1,}", "{\"a\":1}garbage", "{\"a\":NaN}", "{'a':1}", "{\"a\" 1}", "01", "1.", ".5", "-", "+1",
                      "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"tab\there\"", "tru", "nul", "\u{FF}"])
    func textThatIsNotJSONIsNil(_ text: String) {
        #expect(JSONTree.parse(Array(text.utf8)) == nil)
    }

    @Test func nestingBeyondTheLimitIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(JSONTree.parse(Array(deep.utf8)) == nil)
        let ok = String(repeating: "[", count: JSONTree.maxDepth) + String(repeating: "]", count: JSONTree.maxDepth)
        #expect(JSONTree.parse(Array(ok.utf8)) != nil)
    }

    @Test func documentsThatAreNotObjectsAreNoObject() {
        #expect(JSONTree.object(Array("[1]".utf8)) == nil)
        #expect(JSONTree.object(Array("\"x\"".utf8)) == nil)
        #expect(JSONTree.parse(Array(" 3 ".utf8)) as? Int == 3)
    }

    /// Either's reading, as comparable text: JSONSerialization's numbers are NSNumbers (a boolean
    /// one says so in its objCType).
    static func canonical(_ value: Any) -> String {
        switch value {
        case is NSNull, is JSONTree.Null: return "null"
        case let s as String: return "s:\(s.debugDescription)"
        case let b as Bool where type(of: value) == Bool.self: return "b:\(b)"
        case let i as Int where type(of: value) == Int.self: return "n:\(Double(i))"
        case let d as Double where type(of: value) == Double.self: return "n:\(d)"
        case let n as NSNumber: return String(cString: n.objCType) == "c" ? "b:\(n.boolValue)" : "n:\(n.doubleValue)"
        case let list as [Any]: return "[" + list.map(canonical).joined(separator: ",") + "]"
        case let map as [String: Any]: return "{" + map.keys.sorted().map { "\($0.debugDescription):\(canonical(map[$0]!))" }.joined(separator: ",") + "}"
        default: return "?\(type(of: value))"
        }
    }

    static let seeds = [
        #"{"source":{"ip":"10.0.0.1","port":43210,"metadata":{"pod":"web-0","tls":"true"}},"destination":{"ip":{"ipv4":167772162},"port":8080,"metadata":null},"routeMeta":null,"proxyDirection":"OUTBOUND","requestInitEvent":{"id":{"base":1,"stream":42},"method":{"registered":"POST"},"authority":"voting:8080","path":"/v","headers":[{"name":"te","valueStr":"trailers"}]}}"#,
        #"{"responseEndEvent":{"sinceRequestInit":"0.001500s","sinceResponseInit":{"seconds":1,"nanos":5e8},"responseBytes":1337,"eos":{"grpcStatusCode":14},"trailers":[{"name":"x","valueBin":"aGk="}]}}"#,
        #"{"authority":"web.emojivoto:80","weights":{"web":90,"web-canary":10.0,"x":-1,"y":1e300,"z":true}}"#,
        #"{"maxRps":100,"token":"s3cr\u00e9t\"\\\/\b\f\n\r\t","match":{"path":"/api","method":"GET"},"list":[[],{},[[0]],-0.0,0,1E-7]}"#,
    ]

    /// The seeds, and 6,000 mutations of them (bytes dropped, doubled, swapped for JSON's own
    /// punctuation, digits and escapes; a fixed seed): accepted by both or by neither, and when
    /// accepted, the same values.
    @Test func readsWhatJSONSerializationReadsAndRefusesWhatItRefuses() throws {
        var rng = SplitMix64(state: 0x5EED)
        let alphabet = Array(#"{}[]:,"\ 0123456789.eE+-truefalsnul/bfnrtu\#u{00e9}"#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xFF]
        var cases: [[UInt8]] = Self.seeds.map { Array($0.utf8) }
        for _ in 0..<6_000 {
            var bytes = Array(Self.seeds[Int(rng.next() % UInt64(Self.seeds.count))].utf8)
            for _ in 0..<(1 + Int(rng.next() % 3)) where !bytes.isEmpty {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0: bytes.remove(at: i)
                case 1: bytes.insert(bytes[i], at: i)
                case 2: bytes[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                default: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
                }
            }
            cases.append(bytes)
        }
        var accepted = 0
        for bytes in cases {
            let theirs = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            let ours = JSONTree.parse(bytes)
            let shown = String(decoding: bytes, as: UTF8.self)
            #expect((ours == nil) == (theirs == nil), "\(shown): JSONTree \(ours == nil ? "refused" : "read") it, JSONSerialization \(theirs == nil ? "refused" : "read") it")
            if let ours, let theirs {
                accepted += 1
                #expect(Self.canonical(ours) == Self.canonical(theirs), "\(shown)")
            }
        }
        #expect(accepted > 500, "only \(accepted) of the cases were JSON: the mutations are too rough to compare much")
    }
}
