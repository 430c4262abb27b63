import MeshTap
import CCurl
import Foundation

/// Sets and reads traffic-split weights through a meshproxy admin listener (`/split`).
public struct SplitClient: Sendable {
    public var adminURL: String
    public var token: String?

    public init(adminURL: String, token: String? = nil) {
        var url = adminURL
        if !url.contains("://") { url = "http://" + url }
        while url.hasSuffix("/") { url.removeLast() }
        self.adminURL = url
        self.token = token
    }

    /// Sets `weights` (backend → weight) for `authority`; throws with the proxy's reason.
    public func set(authority: String, weights: [String: Int]) throws(SourceError) {
        let body = "{\"authority\":\(JSONText.string(authority)),\"weights\":{"
            + weights.sorted { $0.key < $1.key }.map { "\(JSONText.string($0.key)):\($0.value)" }.joined(separator: ",") + "}}"
        let (status, text) = try request(method: "POST", body: body)
        guard status == 200 else { throw SourceError("\(adminURL)/split refused the weights (HTTP \(status)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))") }
    }

    /// Every authority's backend weights.
    public func get() throws(SourceError) -> [String: [String: Int]] {
        let (status, text) = try request(method: "GET", body: nil)
        guard status == 200, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: [String: Int]] else {
            throw SourceError("\(adminURL)/split: HTTP \(status): \(text)")
        }
        return object
    }

    private func request(method: String, body: String?) throws(SourceError) -> (Int, String) {
        guard let easy = curl_easy_init() else { throw SourceError("cannot start an HTTP request") }
        defer { curl_easy_cleanup(easy) }
        let sink = ResponseSink()
        var headers: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Content-Type: application/json")
        if let token { headers = curl_slist_append(headers, "Authorization: Bearer \(token)") }
        defer { curl_slist_free_all(headers) }
        mt_curl_setopt_string(easy, CURLOPT_URL, adminURL + "/split")
        mt_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        mt_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, 5000)
        mt_curl_setopt_pointer(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headers))
        if let body, method == "POST" {
            mt_curl_setopt_long(easy, CURLOPT_POST, 1)
            mt_curl_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, body)
        }
        mt_curl_setopt_write(easy, { pointer, size, count, userdata in
            guard let pointer, let userdata else { return 0 }
            let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
            pointer.withMemoryRebound(to: UInt8.self, capacity: size * count) { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: size * count)) }
            return size * count
        })
        mt_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
        let rc = curl_easy_perform(easy)
        guard rc == CURLE_OK else {
            throw SourceError("\(adminURL)/split: \(String(cString: curl_easy_strerror(rc)))")
        }
        var status = 0
        mt_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return (status, String(decoding: sink.bytes, as: UTF8.self))
    }
}

private final class ResponseSink {
    var bytes: [UInt8] = []
}
