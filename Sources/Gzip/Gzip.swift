import CZlib

/// Corrupt compressed data.
public struct GzipError: Error, Sendable {
    public let description = "the gzip data is corrupt"
}

/// Streaming gzip decompression: feed compressed chunks, get what they decompress to.
public final class GzipInflater {
    private var stream = z_stream()
    public private(set) var finished = false

    public init?() {
        guard mt_inflate_init_gzip(&stream) == Z_OK else { return nil }
    }

    deinit { inflateEnd(&stream) }

    /// Decompresses `input`; throws on corrupt data. After the end of a member, a following
    /// member (concatenated gzip files) is read too.
    public func inflate(_ input: [UInt8]) throws(GzipError) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        var input = input
        while !input.isEmpty {
            let consumed: Int = try input.withUnsafeMutableBufferPointer { inBuf throws(GzipError) -> Int in
                stream.next_in = inBuf.baseAddress
                stream.avail_in = uInt(inBuf.count)
                repeat {
                    let produced: Int = chunk.withUnsafeMutableBufferPointer { outBuf in
                        stream.next_out = outBuf.baseAddress
                        stream.avail_out = uInt(outBuf.count)
                        let rc = CZlib.inflate(&stream, Z_NO_FLUSH)
                        if rc == Z_STREAM_END { finished = true }
                        return rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR ? outBuf.count - Int(stream.avail_out) : -1
                    }
                    if produced < 0 { throw GzipError() }
                    out += chunk[0..<produced]
                    if finished { break }
                } while stream.avail_out == 0
                return inBuf.count - Int(stream.avail_in)
            }
            input.removeFirst(consumed)
            if finished {
                // Another member may follow.
                inflateReset(&stream)
                finished = input.isEmpty
                if consumed == 0 { break }
            } else if consumed == 0 {
                break
            }
        }
        return out
    }
}

/// Streaming gzip compression, flushed to a byte boundary on request so every write so far can
/// be decompressed even if the file is never finished.
public final class GzipDeflater {
    private var stream = z_stream()

    public init?(level: Int32 = 6) {
        guard mt_deflate_init_gzip(&stream, level) == Z_OK else { return nil }
    }

    deinit { deflateEnd(&stream) }

    public func deflate(_ input: [UInt8], finish: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = uInt(inBuf.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = uInt(outBuf.count)
                    _ = CZlib.deflate(&stream, finish ? Z_FINISH : Z_SYNC_FLUSH)
                    return outBuf.count - Int(stream.avail_out)
                }
                out += chunk[0..<produced]
            } while stream.avail_out == 0
        }
        return out
    }
}

extension GzipDeflater {
    /// `bytes` as one whole gzip member.
    public static func compress(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8]? {
        GzipDeflater(level: level)?.deflate(bytes, finish: true)
    }
}
