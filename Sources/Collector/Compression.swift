import CCompression

/// Compression of the client assets, once at start: gzip by zlib, brotli by Google's library
/// (Debian's zlib1g-dev and libbrotli-dev). Decoders for checking what was served.
enum Compression {
    /// gzip (RFC 1952) at the highest level.
    static func gzip(_ input: [UInt8]) -> [UInt8]? {
        var stream = z_stream()
        // 15 window bits + 16: a gzip wrapper instead of zlib's.
        guard deflateInit2_(&stream, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return nil
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        guard finish(&stream, input, &output, deflate) == Z_STREAM_END else { return nil }
        return Array(output.prefix(Int(stream.total_out)))
    }

    /// Runs a zlib stream over all of `input` into `output` in one call (`deflate` or `inflate`
    /// with Z_FINISH); the buffers live only for the call.
    private static func finish(_ stream: inout z_stream, _ input: [UInt8], _ output: inout [UInt8],
                               _ step: (UnsafeMutablePointer<z_stream>, Int32) -> Int32) -> Int32 {
        var source = input
        return source.withUnsafeMutableBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                stream.next_in = src.baseAddress; stream.avail_in = UInt32(src.count)
                stream.next_out = dst.baseAddress; stream.avail_out = UInt32(dst.count)
                return step(&stream, Z_FINISH)
            }
        }
    }

    /// Brotli (RFC 7932) at the highest quality, text mode.
    static func brotli(_ input: [UInt8]) -> [UInt8]? {
        var size = BrotliEncoderMaxCompressedSize(input.count)
        guard size > 0 else { return nil }
        var output = [UInt8](repeating: 0, count: size)
        let ok = input.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                BrotliEncoderCompress(BROTLI_MAX_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, src.count, src.baseAddress, &size, dst.baseAddress)
            }
        }
        return ok == BROTLI_TRUE ? Array(output.prefix(size)) : nil
    }

    /// The content of a gzip stream, or nil.
    static func gunzip(_ input: [UInt8], limit: Int = 1 << 24) -> [UInt8]? {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: limit)
        guard finish(&stream, input, &output, inflate) == Z_STREAM_END else { return nil }
        return Array(output.prefix(Int(stream.total_out)))
    }

    /// The content of a brotli stream, or nil.
    static func unbrotli(_ input: [UInt8], limit: Int = 1 << 24) -> [UInt8]? {
        var size = limit
        var output = [UInt8](repeating: 0, count: limit)
        let result = input.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in BrotliDecoderDecompress(src.count, src.baseAddress, &size, dst.baseAddress) }
        }
        return result == BROTLI_DECODER_RESULT_SUCCESS ? Array(output.prefix(size)) : nil
    }
}
