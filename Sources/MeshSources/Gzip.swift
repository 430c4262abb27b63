import CZlib

/// Streaming gzip decompression: feed compressed chunks, get what they decompress to.
final class GzipInflater {
    private var stream = z_stream()
    private(set) var finished = false

    init?() {
        guard mt_inflate_init_gzip(&stream) == Z_OK else { return nil }
    }

    deinit { inflateEnd(&stream) }

    /// Decompresses `input`; throws on corrupt data. After the end of a member, a following
    /// member (concatenated gzip files) is read too.
    func inflate(_ input: [UInt8]) throws(RecordingError) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        var input = input
        while !input.isEmpty {
            let consumed: Int = try input.withUnsafeMutableBufferPointer { inBuf throws(RecordingError) -> Int in
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
                    if produced < 0 { throw RecordingError("the gzip data is corrupt") }
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
final class GzipDeflater {
    private var stream = z_stream()

    init?(level: Int32 = 6) {
        guard mt_deflate_init_gzip(&stream, level) == Z_OK else { return nil }
    }

    deinit { deflateEnd(&stream) }

    func deflate(_ input: [UInt8], finish: Bool = false) -> [UInt8] {
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
