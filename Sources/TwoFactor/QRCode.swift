import CQREncode

/// A QR code drawn by libqrencode (Debian `libqrencode-dev`), as SVG: one path of dark modules
/// inside a four-module quiet zone, five pixels a module. Only numbers go into the markup; pages
/// show it as an image (a data: URL), never as inserted markup.
public enum QRCode {
    /// The SVG of `text` at error-correction level M and its width in pixels, or nil when
    /// libqrencode refuses it (too long).
    public static func svg(_ text: String) -> (svg: String, pixels: Int)? {
        guard let code = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1) else { return nil }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        let data = code.pointee.data!
        var path = ""
        path.reserveCapacity(width * width * 4)
        for y in 0..<width {
            var x = 0
            while x < width {
                // Runs of dark modules on a row become one rectangle.
                guard data[y * width + x] & 1 == 1 else { x += 1; continue }
                var end = x
                while end < width, data[y * width + end] & 1 == 1 { end += 1 }
                path += "M\(x + 4) \(y + 4)h\(end - x)v1h-\(end - x)z"
                x = end
            }
        }
        let size = width + 8
        return ("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(size) \(size)\" width=\"\(size * 5)\" height=\"\(size * 5)\" "
            + "shape-rendering=\"crispEdges\"><rect width=\"\(size)\" height=\"\(size)\" fill=\"#fff\"/><path fill=\"#000\" d=\"\(path)\"/></svg>",
                size * 5)
    }
}
