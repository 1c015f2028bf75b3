import Foundation
import Runtime

/// One entry of the `downtimeReasons` catalogue (docs/CONFIG.md): why a station stopped, in both
/// languages, its category and whether the stop was planned.
///
/// `code` is a fault code as the PLC reports it (`"217"`) or the name of a non-fault stop state
/// (`setup`, `maintenance`, `blocked`, `starved`): a downtime stretch takes the entry of its fault
/// code, else the entry named after its state, else none.
public struct DowntimeReason: Sendable, Equatable {
    public var code: String
    public var text: String
    public var textZh: String
    public var category: String
    public var planned: Bool

    public init(code: String, text: String, textZh: String, category: String, planned: Bool) {
        self.code = code
        self.text = text
        self.textZh = textZh
        self.category = category
        self.planned = planned
    }

    /// `{code, text, textZh, category, planned}` (docs/openapi.json `DowntimeReason`).
    public var json: JSON {
        .obj([("code", .string(code)), ("text", .string(text)), ("textZh", .string(textZh)),
              ("category", .string(category)), ("planned", .bool(planned))])
    }

    /// Decodes the `downtimeReasons` array (absent: an empty catalogue).
    static func decode(_ node: ConfigNode?) throws -> [DowntimeReason] {
        guard let node else { return [] }
        var reasons: [DowntimeReason] = []
        for element in try node.elements() {
            try element.rejectUnknownKeys(["code", "text", "textZh", "category", "planned"])
            let codeNode = try element.required("code")
            let code: String
            switch codeNode.json {
            case .int, .double: code = String(try codeNode.int())
            default: code = try codeNode.nonEmptyString()
            }
            guard code.unicodeScalars.count <= 64, !code.contains(where: { $0.isWhitespace }) else {
                throw codeNode.error("\(quoted(code)) is not a reason code (up to 64 characters, no spaces)")
            }
            if reasons.contains(where: { $0.code == code }) { throw codeNode.error("code \(quoted(code)) is listed twice") }
            let text = try element.required("text").nonEmptyString()
            let textZh = try element.optional("textZh")?.nonEmptyString() ?? text
            let category = try element.optional("category")?.nonEmptyString() ?? "other"
            let planned = try element.optional("planned")?.bool() ?? false
            reasons.append(DowntimeReason(code: code, text: text, textZh: textZh, category: category, planned: planned))
        }
        return reasons
    }
}

extension PlantConfig {
    /// The catalogue entry of a code, if any.
    public func downtimeReason(code: String) -> DowntimeReason? { downtimeReasons.first { $0.code == code } }
}
