import Foundation
import PlantModel
import Runtime

/// The equipment health report (`GET /api/reports/equipment`, and the scheduled notification of
/// `reports.equipmentEveryH`): every `condition` unit, worst first, as JSON, CSV or HTML. Both
/// languages in the HTML and the text.
public struct EquipmentReport: Sendable {
    public var plant: String
    public var generatedAt: Date?
    public var units: [EquipmentHealth]
    /// The `alerts.maintenance.below` level.
    public var below: Double

    public init(plant: String, generatedAt: Date?, units: [EquipmentHealth], below: Double) {
        self.plant = plant
        self.generatedAt = generatedAt
        self.units = units
        self.below = below
    }

    /// Units below the maintenance level.
    public var atRisk: [EquipmentHealth] { units.filter { $0.health < below } }

    public var json: JSON {
        .obj([
            ("plant", .string(plant)),
            ("generatedAt", .str(generatedAt.map(Timestamp.format))),
            ("maintenanceBelow", .double(below)),
            ("atRisk", .int(Int64(atRisk.count))),
            ("units", .array(units.map(\.json))),
        ])
    }

    static let columns = ["station", "signal", "group", "health", "score", "peers", "peerScore", "peerMedian", "baselineMean",
                          "baselineSigma", "baselineN", "level", "trendPerHour", "hoursToLimit", "unit"]

    /// RFC 4180 CSV with a header row.
    public var csv: String {
        func number(_ x: Double?) -> String { x.map { String(round6($0)) } ?? "" }
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var lines = [Self.columns.joined(separator: ",")]
        for u in units {
            lines.append([field(u.station), field(u.signal), field(u.group ?? ""), number(u.health), number(u.score),
                          u.peers.map { String($0.n) } ?? "", number(u.peers?.score), number(u.peers?.median), number(u.baselineMean),
                          number(u.baselineSigma), String(u.baselineN), number(u.level), number(u.trend), number(u.hoursToLimit),
                          field(u.unit ?? "")].joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// A self-contained HTML page (no scripts, no external files).
    public var html: String {
        func esc(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        func number(_ x: Double?, _ digits: Int = 2) -> String { x.map { String(format: "%.\(digits)f", $0) } ?? "–" }
        var rows = ""
        for u in units {
            let risk = u.health < below
            rows += "<tr class=\"\(risk ? "risk" : "ok")\"><td>\(esc(u.station))</td><td>\(esc(u.signal))</td><td>\(esc(u.group ?? "–"))</td>"
            rows += "<td class=\"n\">\(number(u.health))</td><td class=\"n\">\(number(u.score))</td>"
            rows += "<td class=\"n\">\(u.peers.map { "\($0.n) · \(number($0.score))" } ?? "–")</td>"
            rows += "<td class=\"n\">\(number(u.baselineMean, 3)) ± \(number(u.baselineSigma, 3))</td><td class=\"n\">\(number(u.level, 3))</td>"
            rows += "<td class=\"n\">\(number(u.trend, 3))</td><td class=\"n\">\(number(u.hoursToLimit, 1))</td><td>\(esc(u.unit ?? ""))</td></tr>\n"
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Equipment health / 设备健康 – \(esc(plant))</title>
            <style>body{font:14px sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}
            th{background:#eee;text-align:left}.n{text-align:right;font-variant-numeric:tabular-nums}tr.risk td{background:#fde2e2}</style></head>
            <body><h1>Equipment health report / 设备健康报告</h1>
            <p>\(esc(plant)) · \(esc(generatedAt.map(Timestamp.format) ?? "–")) · \(atRisk.count) below / 低于 \(number(below))</p>
            <table><thead><tr><th>Station / 工位</th><th>Signal / 信号</th><th>Group / 组</th><th>Health / 健康度</th><th>Score / 偏离</th>
            <th>Peers / 同组</th><th>Baseline / 基线</th><th>Level / 当前</th><th>Trend per h / 趋势每小时</th><th>Hours to limit / 距限值小时</th><th>Unit / 单位</th></tr></thead>
            <tbody>
            \(rows)</tbody></table></body></html>

            """
    }

    /// A short text for a notification: the units at risk (or that all are healthy).
    public var summary: String {
        let risky = atRisk
        var text = "Equipment health report / 设备健康报告 – \(plant)\n"
        if risky.isEmpty { text += "All \(units.count) units at or above \(format(below)) / 全部设备健康" }
        for u in risky.prefix(20) {
            text += "\(u.station) \(u.signal): health / 健康度 \(format(u.health))"
            if let hours = u.hoursToLimit { text += ", \(format(hours)) h to limit / 小时到限值" }
            text += "\n"
        }
        return text
    }
}
