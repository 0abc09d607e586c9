import CCairo
public import Foundation

/// What a report shows, already formatted and disclosed for its reader: the renderer only draws.
public struct ReportDocument: Sendable {
    public struct Card: Sendable {
        public var label: String, value: String, change: String?
        public init(label: String, value: String, change: String?) { self.label = label; self.value = value; self.change = change }
    }
    public struct Table: Sendable {
        public var title: String, headers: [String], rows: [[String]]
        public init(title: String, headers: [String], rows: [[String]]) { self.title = title; self.headers = headers; self.rows = rows }
    }
    /// A bar of the chart: its label and value (nil: withheld, drawn as a gap).
    public struct Bar: Sendable {
        public var label: String, value: Double?
        public init(label: String, value: Double?) { self.label = label; self.value = value }
    }
    public var title: String
    public var subtitle: String
    public var cards: [Card]
    public var chartTitle: String
    public var bars: [Bar]
    public var tables: [Table]
    public var notes: [String]

    public init(title: String, subtitle: String, cards: [Card], chartTitle: String, bars: [Bar], tables: [Table], notes: [String]) {
        self.title = title; self.subtitle = subtitle; self.cards = cards; self.chartTitle = chartTitle; self.bars = bars
        self.tables = tables; self.notes = notes
    }
}

/// Draws reports with cairo (Debian `libcairo2-dev`): a PDF (A4) and the chart as a PNG.
public enum ReportRenderer {
    final class Sink { var bytes: [UInt8] = [] }

    static let write: cairo_write_func_t = { closure, data, length in
        let sink = Unmanaged<Sink>.fromOpaque(closure!).takeUnretainedValue()
        if let data { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: data, count: Int(length))) }
        return CAIRO_STATUS_SUCCESS
    }

    /// The A4 PDF: title, period, figures with their change, the chart, the tables, the notes.
    public static func pdf(_ doc: ReportDocument) -> [UInt8] {
        let sink = Sink()
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }
        let width = 595.0, height = 842.0, margin = 48.0
        let surface = cairo_pdf_surface_create_for_stream(write, context.toOpaque(), width, height)!
        let cr = cairo_create(surface)!
        var y = margin
        func font(_ size: Double, bold: Bool = false) {
            cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
            cairo_set_font_size(cr, size)
        }
        func text(_ s: String, x: Double, _ size: Double, bold: Bool = false, gray: Bool = false) {
            font(size, bold: bold)
            gray ? cairo_set_source_rgb(cr, 0.35, 0.35, 0.35) : cairo_set_source_rgb(cr, 0, 0, 0)
            cairo_move_to(cr, x, y)
            cairo_show_text(cr, String(s.prefix(120)))
        }
        func room(_ needed: Double) {
            if y + needed > height - margin { cairo_show_page(cr); y = margin }
        }
        y += 20; text(doc.title, x: margin, 20, bold: true)
        y += 20; text(doc.subtitle, x: margin, 11, gray: true)
        y += 28
        // Figures: two columns of label, value, change.
        for (i, card) in doc.cards.enumerated() {
            let x = margin + Double(i % 2) * 250
            if i % 2 == 0 && i > 0 { y += 22 }
            room(22)
            text(card.label, x: x, 10, gray: true)
            text(card.value, x: x + 110, 12, bold: true)
            if let change = card.change { text(change, x: x + 200, 10, gray: true) }
        }
        y += 34
        // The chart.
        room(170)
        text(doc.chartTitle, x: margin, 12, bold: true)
        y += 10
        drawBars(cr, doc.bars, x: margin, y: y, width: width - 2 * margin, height: 120)
        y += 150
        for table in doc.tables {
            room(40 + 16 * Double(min(table.rows.count, 3)))
            text(table.title, x: margin, 12, bold: true)
            y += 18
            let columns = max(1, table.headers.count)
            let first = (width - 2 * margin) * 0.55
            let rest = (width - 2 * margin - first) / Double(max(1, columns - 1))
            func row(_ cells: [String], bold: Bool) {
                room(16)
                for (c, cell) in cells.prefix(columns).enumerated() {
                    text(c == 0 ? String(cell.prefix(60)) : cell, x: margin + (c == 0 ? 0 : first + rest * Double(c - 1)), 9.5, bold: bold)
                }
                y += 15
            }
            row(table.headers, bold: true)
            if table.rows.isEmpty { text("Nothing in this period.", x: margin, 9.5, gray: true); y += 15 }
            for r in table.rows { row(r, bold: false) }
            y += 14
        }
        for note in doc.notes {
            // Notes wrap at about 95 characters.
            var line = ""
            for word in note.split(separator: " ") {
                if line.count + word.count > 95 { room(14); text(line, x: margin, 8.5, gray: true); y += 12; line = "" }
                line += (line.isEmpty ? "" : " ") + word
            }
            if !line.isEmpty { room(14); text(line, x: margin, 8.5, gray: true); y += 16 }
        }
        cairo_show_page(cr)
        cairo_destroy(cr)
        cairo_surface_finish(surface)
        cairo_surface_destroy(surface)
        return sink.bytes
    }

    /// The chart alone as a PNG (for the e-mail).
    public static func chartPNG(_ bars: [ReportDocument.Bar], width: Int = 640, height: Int = 200) -> [UInt8] {
        let surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, Int32(width), Int32(height))!
        let cr = cairo_create(surface)!
        cairo_set_source_rgb(cr, 1, 1, 1)
        cairo_paint(cr)
        drawBars(cr, bars, x: 10, y: 10, width: Double(width - 20), height: Double(height - 40))
        let sink = Sink()
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }
        cairo_surface_write_to_png_stream(surface, write, context.toOpaque())
        cairo_destroy(cr)
        cairo_surface_destroy(surface)
        return sink.bytes
    }

    /// Bars scaled to the largest shown value, with the first and last labels under them.
    static func drawBars(_ cr: OpaquePointer, _ bars: [ReportDocument.Bar], x: Double, y: Double, width: Double, height: Double) {
        cairo_set_source_rgb(cr, 0.8, 0.8, 0.8)
        cairo_set_line_width(cr, 0.5)
        cairo_move_to(cr, x, y + height)
        cairo_line_to(cr, x + width, y + height)
        cairo_stroke(cr)
        guard !bars.isEmpty else { return }
        let top = max(1, bars.compactMap(\.value).max() ?? 1)
        let step = width / Double(bars.count)
        cairo_set_source_rgb(cr, 0.16, 0.38, 0.67)
        for (i, bar) in bars.enumerated() {
            guard let v = bar.value, v > 0 else { continue }
            let h = height * v / top
            cairo_rectangle(cr, x + Double(i) * step + step * 0.15, y + height - h, step * 0.7, h)
        }
        cairo_fill(cr)
        cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(cr, 9)
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35)
        cairo_move_to(cr, x, y + height + 14)
        cairo_show_text(cr, bars[0].label)
        if bars.count > 1 {
            var extents = cairo_text_extents_t()
            cairo_text_extents(cr, bars[bars.count - 1].label, &extents)
            cairo_move_to(cr, x + width - extents.x_advance, y + height + 14)
            cairo_show_text(cr, bars[bars.count - 1].label)
        }
        if bars.contains(where: { $0.value != nil }) {
            cairo_move_to(cr, x, y + 8)
            cairo_show_text(cr, "max \(Int(top))")
        }
    }
}
