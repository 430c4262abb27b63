import Testing
@testable import MeshTap

/// JSONTree is what the proxy (tap filters, `POST /split`) and meshtop's tap decoder read JSON
/// with, instead of Foundation's JSONSerialization.
@Suite struct JSONTreeTests {
    @Test func valuesComeOutAsThePlainTypesCallersCastTo() throws {
        let text = #"{"s":"é\u00e9\n","i":42,"neg":-7,"f":1.5,"e":1e3,"big":1e300,"huge":123456789012345678901234,"t":true,"n":null,"a":[1,"x",[false]],"o":{"k":{}}}"#
        let o = try #require(JSONTree.object(Array(text.utf8)))
        #expect(o["s"] as? String == "éé\n")
        #expect(o["i"] as? Int == 42)
        #expect(o["neg"] as? Int == -7)
        #expect(o["f"] as? Double == 1.5)
        #expect(o["e"] as? Int == 1000 || o["e"] as? Double == 1000)
        #expect(o["big"] as? Double == 1e300)
        #expect(o["huge"] as? Double == 123456789012345678901234.0)
        #expect(o["t"] as? Bool == true)
        #expect(o["t"] as? Int == nil, "a boolean is not a number")
        #expect(o["n"] is JSONTree.Null)
        let a = try #require(o["a"] as? [Any])
        #expect(a.count == 3 && a[0] as? Int == 1 && a[1] as? String == "x" && (a[2] as? [Any])?.first as? Bool == false)
        #expect(((o["o"] as? [String: Any])?["k"] as? [String: Any])?.isEmpty == true)
    }

    // (FoundationEssentials' decoder forgives a trailing comma, `[1,]`: harmless for what reads it.)
    @Test(arguments: ["", "{", "[1,2", "{\"a\":1}garbage", "{\"a\":NaN}", "{'a':1}", "{\"a\" 1}", "\u{FF}", String(repeating: "[", count: 100_000)])
    func textThatIsNotJSONIsNil(_ text: String) {
        #expect(JSONTree.parse(Array(text.utf8)) == nil)
    }

    @Test func documentsThatAreNotObjectsAreNoObject() {
        #expect(JSONTree.object(Array("[1]".utf8)) == nil)
        #expect(JSONTree.object(Array("\"x\"".utf8)) == nil)
        #expect(JSONTree.parse(Array("3".utf8)) as? Int == 3)
    }
}
