import Foundation
import PlantModel
import PlantStore
import Runtime

/// CSV of shift history and the shift report (RFC 4180: a header row, fields quoted when they
/// hold a comma, quote or line break, CRLF line ends; empty for a missing figure).
enum ShiftCSV {
    static let figureColumns = ["oee", "availability", "performance", "quality", "fpy", "goodCount", "totalCount",
                                "throughputPerHour", "cycleTimeMeanS", "cycleTimeP50S", "cycleTimeP95S", "runTimeS",
                                "plannedTimeS", "downtimeS", "faults", "mtbfS", "mttrS"]

    /// The columns of `GET /api/shifts?format=csv` (streamed by ``CSVExport``): the fields of ``list(_:)``.
    static let listColumns = [CSVColumn<JSON>(headers: ["date", "shift", "start", "end", "countedFrom", "completedVehicles",
                                                        "inspectionFpy", "rty"] + figureColumns) { entry, out in
        let line = entry["line"] ?? .null
        for field in [text(entry["date"]), text(entry["shift"]), text(entry["start"]), text(entry["end"]), text(entry["countedFrom"]),
                      text(line["completedVehicles"]), text(line["inspectionFpy"]), text(line["rty"])] + figures(line) {
            out.text(field)
        }
    }]

    /// `GET /api/shifts?format=csv` built in memory: one row per shift with the line's figures.
    static func list(_ entries: [JSON]) -> String {
        var out = row(["date", "shift", "start", "end", "countedFrom", "completedVehicles", "inspectionFpy", "rty"] + figureColumns)
        for entry in entries {
            let line = entry["line"] ?? .null
            out += row([text(entry["date"]), text(entry["shift"]), text(entry["start"]), text(entry["end"]), text(entry["countedFrom"]),
                        text(line["completedVehicles"]), text(line["inspectionFpy"]), text(line["rty"])] + figures(line))
        }
        return out
    }

    /// `GET /api/reports/shift?format=csv`: the line and then every station, one row each.
    static func report(_ document: JSON, config: PlantConfig) -> String {
        let shift = document["shift"]
        let date = text(shift?["date"]), name = text(shift?["name"])
        var out = row(["date", "shift", "scope", "id", "name"] + figureColumns)
        out += row([date, name, "line", "line", config.plant] + figures(document["line"] ?? .null))
        for station in document["stations"]?.arrayValue ?? [] {
            let id = text(station["id"])
            out += row([date, name, "station", id, config.station(id)?.name ?? ""] + figures(station))
        }
        return out
    }

    /// The figure columns of a station's or the line's KPI object.
    static func figures(_ k: JSON) -> [String] {
        let cycle = k["cycleTimeS"]
        var downtime: String = ""
        if let members = k["downtimeByFault"]?.objectValue {
            downtime = number(members.reduce(0.0) { $0 + ($1.1.doubleValue ?? 0) })
        }
        return [text(k["oee"]), text(k["availability"]), text(k["performance"]), text(k["quality"]), text(k["fpy"]),
                text(k["goodCount"]), text(k["totalCount"]), text(k["throughputPerHour"]), text(cycle?["mean"]), text(cycle?["p50"]),
                text(cycle?["p95"]), text(k["runTimeS"]), text(k["plannedTimeS"]), downtime, text(k["faults"]), text(k["mtbfS"]), text(k["mttrS"])]
    }

    static func text(_ value: JSON?) -> String {
        switch value {
        case .none, .some(.null): return ""
        case .some(.string(let s)): return s
        case .some(.int(let i)): return String(i)
        case .some(.double(let d)): return number(d)
        case .some(.bool(let b)): return b ? "true" : "false"
        case .some(let other): return other.serialized()
        }
    }

    static func number(_ d: Double) -> String {
        if d.rounded() == d && abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }

    static func row(_ fields: [String]) -> String {
        fields.map(quote).joined(separator: ",") + "\r\n"
    }

    static func quote(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// The shift report as one printable HTML page (`GET /api/reports/shift?format=html`): labels in
/// English, Chinese or both (`lang`), styles from the dashboards' `css/report.css` (the page's
/// security policy allows no inline style or script).
enum ShiftReportHTML {
    /// Label texts: English and Simplified Chinese.
    static let labels: [String: (en: String, zh: String)] = [
        "title": ("Shift report", "班次报告"), "plant": ("Plant", "工厂"), "date": ("Date", "日期"), "shift": ("Shift", "班次"),
        "time": ("Time", "时间"), "breaks": ("Planned breaks", "计划休息"), "none": ("none", "无"),
        "countedFrom": ("Figures from", "数据起始"), "line": ("Line", "产线"), "stations": ("Stations", "工位"),
        "station": ("Station", "工位"), "oee": ("OEE", "设备综合效率"), "availability": ("Availability", "可用率"),
        "performance": ("Performance", "性能率"), "quality": ("Quality", "合格率"), "fpy": ("FPY", "一次合格率"),
        "rty": ("RTY", "直通率"), "good": ("Good", "合格数"), "total": ("Total", "总数"),
        "completed": ("Vehicles completed", "完成车辆"), "throughput": ("Throughput / h", "每小时产量"),
        "cycle": ("Cycle time mean / p95", "节拍 均值 / p95"), "run": ("Run time", "运行时间"),
        "planned": ("Planned time", "计划时间"), "downtime": ("Unplanned downtime", "非计划停机"), "faults": ("Faults", "故障次数"),
        "mtbf": ("MTBF", "平均故障间隔"), "mttr": ("MTTR", "平均修复时间"),
        "downtimeByFault": ("Downtime by fault code", "按故障代码的停机"), "code": ("Code", "代码"), "seconds": ("Time", "时长"),
        "defects": ("Defects by code", "按代码的缺陷"), "count": ("Count", "数量"),
        "alerts": ("Alerts", "报警"), "per10Min": ("per 10 min at the end", "结束时每 10 分钟"),
        "flood": ("time in alert flood", "报警泛滥时间"), "wip": ("Vehicles on the line at the end", "结束时线上车辆"),
        "plan": ("Plan", "计划"), "plannedOrders": ("planned", "计划"), "completedOrders": ("completed", "完成"),
        "attainment": ("attainment", "达成率"), "notes": ("Handover notes", "交接班记录"), "noNotes": ("No handover notes", "无交接班记录"),
        "by": ("by", "记录人"), "print": ("Print", "打印"), "csv": ("CSV", "CSV"), "json": ("JSON", "JSON"),
        "running": ("(shift in progress: figures so far)", "（班次进行中：截至目前的数据）"),
    ]

    /// `inProgress`: the current shift (its figures so far).
    static func page(_ document: JSON, notes: [ShiftNote], config: PlantConfig, lang: String, inProgress: Bool) -> String {
        func label(_ key: String) -> String {
            guard let l = labels[key] else { return escape(key) }
            switch lang {
            case "en": return escape(l.en)
            case "zh": return escape(l.zh)
            default: return l.en == l.zh ? escape(l.en) : "\(escape(l.en)) <span class=\"zh\">\(escape(l.zh))</span>"
            }
        }
        let shift = document["shift"] ?? .null
        let name = shift["name"]?.stringValue ?? ""
        let date = shift["date"]?.stringValue ?? ""
        let start = shift["start"]?.stringValue.flatMap(Timestamp.parse)
        let end = shift["end"]?.stringValue.flatMap(Timestamp.parse)
        let countedFrom = shift["countedFrom"]?.stringValue.flatMap(Timestamp.parse)
        let clock = localClock(config)
        let line = document["line"] ?? .null
        let htmlLang = lang == "zh" ? "zh-CN" : "en"
        let query = "date=\(percent(date))&shift=\(percent(name))"

        var h = """
        <!DOCTYPE html>
        <html lang="\(htmlLang)">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(labels["title"]!.en)) · \(escape(labels["title"]!.zh)) — \(escape(date)) \(escape(name))</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="/css/report.css">
        </head>
        <body class="shift-report">
        <header>
        <h1>\(label("title")) — \(escape(config.plant))</h1>
        <nav class="no-print"><button type="button" id="print-report">\(label("print"))</button>
        <a href="/api/reports/shift?\(query)&amp;format=csv">\(label("csv"))</a>
        <a href="/api/reports/shift?\(query)&amp;format=json">\(label("json"))</a></nav>
        </header>
        <table class="facts">
        <tr><th>\(label("date"))</th><td id="report-date">\(escape(date))</td><th>\(label("shift"))</th><td id="report-shift">\(escape(name))</td></tr>
        <tr><th>\(label("time"))</th><td>\(start.map(clock) ?? "—")–\(end.map(clock) ?? "—") (\(escape(config.timezone.identifier)))</td>
        <th>\(label("breaks"))</th><td>\(breaksText(shift, clock: clock, none: label("none")))</td></tr>
        """
        if let countedFrom, let start, countedFrom > start {
            h += "<tr><th>\(label("countedFrom"))</th><td colspan=\"3\">\(clock(countedFrom))</td></tr>\n"
        }
        if inProgress { h += "<tr><td colspan=\"4\" class=\"muted\" id=\"report-running\">\(label("running"))</td></tr>\n" }
        h += "</table>\n"

        // The line.
        h += "<section><h2>\(label("line"))</h2>\n<table class=\"figures\" id=\"report-line\">\n"
        let lineRows: [(String, String)] = [
            ("oee", pct(line["oee"])), ("availability", pct(line["availability"])), ("performance", pct(line["performance"])),
            ("quality", pct(line["quality"])), ("fpy", pct(line["fpy"])), ("rty", pct(line["rty"])),
            ("good", int(line["goodCount"])), ("total", int(line["totalCount"])), ("completed", int(line["completedVehicles"])),
            ("throughput", num(line["throughputPerHour"])), ("downtime", duration(downtimeSeconds(line))),
            ("mtbf", duration(line["mtbfS"]?.doubleValue)), ("mttr", duration(line["mttrS"]?.doubleValue)),
        ]
        for pair in stride(from: 0, to: lineRows.count, by: 2) {
            h += "<tr>"
            for (key, value) in lineRows[pair..<min(pair + 2, lineRows.count)] {
                h += "<th>\(label(key))</th><td class=\"num\" data-figure=\"\(key)\">\(value)</td>"
            }
            h += "</tr>\n"
        }
        if let plan = line["plan"], !plan.isNull {
            h += "<tr><th>\(label("plan"))</th><td class=\"num\" colspan=\"3\">\(int(plan["planned"])) \(label("plannedOrders")) · "
                + "\(int(plan["completed"])) \(label("completedOrders")) · \(pct(plan["attainment"])) \(label("attainment"))</td></tr>\n"
        }
        h += "</table>\n</section>\n"

        // The stations.
        h += "<section><h2>\(label("stations"))</h2>\n<table class=\"stations\" id=\"report-stations\">\n<thead><tr>"
        for key in ["station", "oee", "availability", "performance", "quality", "fpy", "good", "total", "cycle", "run", "planned", "downtime", "faults"] {
            h += "<th>\(label(key))</th>"
        }
        h += "</tr></thead>\n<tbody>\n"
        for station in document["stations"]?.arrayValue ?? [] {
            let id = station["id"]?.stringValue ?? ""
            let cycle = station["cycleTimeS"]
            h += "<tr data-station=\"\(escape(id))\"><td>\(escape(id))<div class=\"muted\">\(escape(config.station(id)?.name ?? ""))</div></td>"
            h += "<td class=\"num\">\(pct(station["oee"]))</td><td class=\"num\">\(pct(station["availability"]))</td>"
            h += "<td class=\"num\">\(pct(station["performance"]))</td><td class=\"num\">\(pct(station["quality"]))</td>"
            h += "<td class=\"num\">\(pct(station["fpy"]))</td><td class=\"num\">\(int(station["goodCount"]))</td>"
            h += "<td class=\"num\">\(int(station["totalCount"]))</td>"
            h += "<td class=\"num\">\(num(cycle?["mean"])) / \(num(cycle?["p95"])) s</td>"
            h += "<td class=\"num\">\(duration(station["runTimeS"]?.doubleValue))</td><td class=\"num\">\(duration(station["plannedTimeS"]?.doubleValue))</td>"
            h += "<td class=\"num\">\(duration(downtimeSeconds(station)))</td><td class=\"num\">\(int(station["faults"]))</td></tr>\n"
        }
        h += "</tbody>\n</table>\n</section>\n"

        // Downtime by fault, defects by code, alert load and WIP.
        h += "<section class=\"split\">\n<div><h2>\(label("downtimeByFault"))</h2>\n<table class=\"small\">"
        h += "<tr><th>\(label("code"))</th><th>\(label("seconds"))</th></tr>"
        let downtime = (line["downtimeByFault"]?.objectValue ?? []).sorted { ($0.1.doubleValue ?? 0) > ($1.1.doubleValue ?? 0) }
        if downtime.isEmpty { h += "<tr><td colspan=\"2\" class=\"muted\">\(label("none"))</td></tr>" }
        for (code, seconds) in downtime { h += "<tr><td>\(escape(code))</td><td class=\"num\">\(duration(seconds.doubleValue))</td></tr>" }
        h += "</table></div>\n<div><h2>\(label("defects"))</h2>\n<table class=\"small\">"
        h += "<tr><th>\(label("code"))</th><th>\(label("count"))</th></tr>"
        let defects = document["defects"]?["byCode"]?.arrayValue ?? []
        if defects.isEmpty { h += "<tr><td colspan=\"2\" class=\"muted\">\(label("none"))</td></tr>" }
        for d in defects { h += "<tr><td>\(escape(d["code"]?.stringValue ?? ""))</td><td class=\"num\">\(int(d["count"]))</td></tr>" }
        h += "</table></div>\n<div><h2>\(label("alerts"))</h2>\n<table class=\"small\">"
        let alerts = document["alerts"] ?? .null
        h += "<tr><th>\(label("per10Min"))</th><td class=\"num\">\(int(alerts["per10Min"]))</td></tr>"
        h += "<tr><th>\(label("flood"))</th><td class=\"num\">\(num(alerts["floodTimePct"])) %</td></tr>"
        h += "<tr><th>\(label("wip"))</th><td class=\"num\">\(int(document["wip"]?["line"]))</td></tr>"
        h += "</table></div>\n</section>\n"

        // Handover notes written in the shift.
        h += "<section><h2>\(label("notes"))</h2>\n<ul class=\"notes\" id=\"report-notes\">\n"
        if notes.isEmpty { h += "<li class=\"muted\">\(label("noNotes"))</li>\n" }
        for note in notes {
            h += "<li><div class=\"note-head\">\(clock(note.t)) · \(label("by")) \(escape(note.user))</div><div class=\"note-text\">\(escape(note.text))</div></li>\n"
        }
        h += "</ul>\n</section>\n"
        h += "<script src=\"/js/print.js\"></script>\n</body>\n</html>\n"
        return h
    }

    /// `HH:MM` in the plant's time zone, with the date when it is not the shift's date.
    static func localClock(_ config: PlantConfig) -> (Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = config.timezone
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return { escape(formatter.string(from: $0)) }
    }

    static func breaksText(_ shift: JSON, clock: (Date) -> String, none: String) -> String {
        let breaks = shift["breaks"]?.arrayValue ?? []
        if breaks.isEmpty { return none }
        return breaks.map { b in
            let s = b["start"]?.stringValue.flatMap(Timestamp.parse).map(clock) ?? "—"
            let e = b["end"]?.stringValue.flatMap(Timestamp.parse).map(clock) ?? "—"
            return "\(s)–\(e)"
        }.joined(separator: ", ")
    }

    static func downtimeSeconds(_ k: JSON) -> Double? {
        guard let members = k["downtimeByFault"]?.objectValue else { return nil }
        return members.reduce(0.0) { $0 + ($1.1.doubleValue ?? 0) }
    }

    static func pct(_ v: JSON?) -> String {
        guard let d = v?.doubleValue else { return "—" }
        return String(format: "%.1f %%", d * 100)
    }

    static func num(_ v: JSON?) -> String {
        guard let d = v?.doubleValue else { return "—" }
        return d.rounded() == d ? String(Int64(d)) : String(format: "%.1f", d)
    }

    static func int(_ v: JSON?) -> String { v?.intValue.map { String($0) } ?? "—" }

    /// `h:mm:ss`.
    static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite else { return "—" }
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60)
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func percent(_ text: String) -> String {
        escape(text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text)
    }
}
