import CSV
import Foundation
public import Store

/// CSV from result tables (CSV.swift does the quoting). Every cell is visitor-supplied and
/// hostile: a text cell that a spreadsheet would read as a formula (starting with = + - @, tab
/// or carriage return) is prefixed with an apostrophe. Numbers stay numbers.
public enum CSVRendering {
    public static func text(_ table: ResultTable) throws -> String {
        let stream = OutputStream(toMemory: ())
        let csv = try CSVWriter(stream: stream, newline: .crlf)
        try csv.write(row: table.columns.map(neutralized))
        for row in table.rows {
            try csv.write(row: row.map { cell in
                if case .text(let s) = cell { return neutralized(s) }
                return cell.text
            })
        }
        csv.stream.close()
        let data = stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        return String(decoding: data, as: UTF8.self) + (table.rows.isEmpty && table.columns.isEmpty ? "" : "\r\n")
    }

    public static func neutralized(_ s: String) -> String {
        guard let first = s.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) else { return s }
        return "'" + s
    }
}
