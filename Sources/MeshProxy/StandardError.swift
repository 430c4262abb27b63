#if canImport(Glibc)
import Glibc
#endif

/// One line on stderr, written straight to the descriptor (unbuffered, no Foundation), where the
/// proxy says what it does and what went wrong.
public func sayOnStderr(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    bytes.withUnsafeBytes { buffer in
        var done = 0
        while done < buffer.count {
            let n = write(2, buffer.baseAddress! + done, buffer.count - done)
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            done += n
        }
    }
}
