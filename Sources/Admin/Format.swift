import Foundation

/// How the dashboard writes numbers a reader sees (one place for each rule).
enum Format {
    /// "12.5 %" for 0.125, with a no-break space: the sign never wraps away from its number.
    static func percent(_ fraction: Double, digits: Int = 1) -> String {
        String(format: "%.\(digits)f\u{00A0}%%", fraction * 100)
    }

    /// 12,345: digits grouped by thousands (the dashboard's counts; exports keep plain numbers).
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }
}
