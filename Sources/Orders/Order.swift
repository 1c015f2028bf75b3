import Foundation
import PlantModel
import Runtime

/// Where an order stands (README "Orders and build specs"). After release it follows its vehicle.
public enum OrderStatus: String, Sendable, Equatable, CaseIterable {
    case planned
    /// A VIN is bound.
    case released
    /// The VIN was seen on the line.
    case inProduction = "in_production"
    /// Its vehicle finished the route.
    case completed
    case hold
    case scrapped
    case cancelled

    /// Whether the order holds its VIN (a VIN binds to one active order at a time).
    public var bindsVehicle: Bool { self != .planned && self != .cancelled }
}

/// What happened to an order: the `change` of its `order` event.
public enum OrderChange: String, Sendable, Equatable, CaseIterable {
    case created, released, started, completed, hold
    case releasedFromHold = "released_from_hold"
    case scrapped, cancelled
}

/// One customer order: one vehicle of a model with options.
public struct Order: Sendable, Equatable {
    public var orderId: String
    public var model: String
    public var options: [String]
    public var customer: String?
    /// `YYYY-MM-DD`.
    public var dueDate: String?
    /// `YYYY-MM-DD` in the plant's time zone.
    public var plannedDate: String?
    /// A shift name of the plant.
    public var plannedShift: String?
    /// Build order among released orders (lower first); nil after every numbered one.
    public var sequence: Int64?
    public var status: OrderStatus
    public var vehicleId: String?
    public var createdAt: Date
    public var releasedAt: Date?
    public var startedAt: Date?
    public var completedAt: Date?
    public var cancelledAt: Date?
    public var cancelReason: String?

    public init(orderId: String, model: String, options: [String] = [], customer: String? = nil, dueDate: String? = nil,
                plannedDate: String? = nil, plannedShift: String? = nil, sequence: Int64? = nil,
                status: OrderStatus = .planned, vehicleId: String? = nil, createdAt: Date) {
        self.orderId = orderId
        self.model = model
        self.options = options
        self.customer = customer
        self.dueDate = dueDate
        self.plannedDate = plannedDate
        self.plannedShift = plannedShift
        self.sequence = sequence
        self.status = status
        self.vehicleId = vehicleId
        self.createdAt = createdAt
    }

    /// The order's JSON; `spec` and `vehicleStatus` are added where given (`GET /api/orders/{id}`).
    public func json(spec: JSON? = nil, vehicleStatus: String? = nil) -> JSON {
        func time(_ d: Date?) -> JSON { d.map { .string(Timestamp.format($0)) } ?? .null }
        var members: [(String, JSON?)] = [
            ("orderId", .string(orderId)),
            ("model", .string(model)),
            ("options", .array(options.map { .string($0) })),
            ("customer", .str(customer)),
            ("dueDate", .str(dueDate)),
            ("plannedDate", .str(plannedDate)),
            ("plannedShift", .str(plannedShift)),
            ("sequence", sequence.map { .int($0) } ?? .null),
            ("status", .string(status.rawValue)),
            ("vehicleId", .str(vehicleId)),
            ("createdAt", .string(Timestamp.format(createdAt))),
            ("releasedAt", time(releasedAt)),
            ("startedAt", time(startedAt)),
            ("completedAt", time(completedAt)),
            ("cancelledAt", time(cancelledAt)),
            ("cancelReason", .str(cancelReason)),
        ]
        if let vehicleStatus { members.append(("vehicleStatus", .string(vehicleStatus))) }
        if let spec { members.append(("spec", spec)) }
        return .obj(members)
    }
}

/// An order change to store and publish (`order` event: the order plus `change`).
public struct OrderUpdate: Sendable, Equatable {
    public var order: Order
    public var change: OrderChange
    public var at: Date

    public init(order: Order, change: OrderChange, at: Date) {
        self.order = order
        self.change = change
        self.at = at
    }

    /// The event payload: the order (without its spec) and `change`.
    public var eventJSON: JSON {
        guard case .object(var members) = order.json() else { return order.json() }
        members.append(("change", .string(change.rawValue)))
        return .object(members)
    }
}

/// Why an order command was refused; the API maps ``kind`` onto its status (404, 409, 422).
public struct OrderError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No such order.
        case notFound
        /// The order's status (or the VIN's binding, or an existing id) does not allow it.
        case conflict
        /// A field is missing or wrong (the message names it, with the batch index).
        case invalid
        /// A vehicle id that is not a valid VIN.
        case invalidVIN
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func notFound(_ id: String) -> OrderError { OrderError(.notFound, "no order \(JSON.string(id).serialized())") }
    public static func conflict(_ message: String) -> OrderError { OrderError(.conflict, message) }
    public static func invalid(_ message: String) -> OrderError { OrderError(.invalid, message) }
    public static func invalidVIN(_ message: String) -> OrderError { OrderError(.invalidVIN, message) }

    public var description: String { message }
}

/// A new order as posted, checked field by field (`POST /api/orders`).
public struct OrderDraft: Sendable, Equatable {
    public var orderId: String
    public var model: String
    public var options: [String]
    public var customer: String?
    public var dueDate: String?
    public var plannedDate: String?
    public var plannedShift: String?
    public var sequence: Int64?

    public init(orderId: String, model: String, options: [String] = [], customer: String? = nil, dueDate: String? = nil,
                plannedDate: String? = nil, plannedShift: String? = nil, sequence: Int64? = nil) {
        self.orderId = orderId
        self.model = model
        self.options = options
        self.customer = customer
        self.dueDate = dueDate
        self.plannedDate = plannedDate
        self.plannedShift = plannedShift
        self.sequence = sequence
    }

    static let keys: Set<String> = ["orderId", "model", "options", "customer", "dueDate", "plannedDate", "plannedShift", "sequence"]

    /// Reads one order object; the error names the field (`prefix` is `[3].` in a batch).
    /// Unknown models and options are the book's to refuse (they need the config).
    public static func parse(_ json: JSON, shifts: [String], prefix: String = "") throws(OrderError) -> OrderDraft {
        guard case .object(let members) = json else { throw .invalid("\(prefix.isEmpty ? "the order" : String(prefix.dropLast())) must be an object, not \(json.kindName)") }
        for (key, _) in members where !keys.contains(key) {
            throw .invalid("\(prefix)\(key) is not an order field (fields: \(keys.sorted().joined(separator: ", ")))")
        }
        func text(_ key: String, required: Bool = false, max: Int = 200) throws(OrderError) -> String? {
            guard let value = json[key], !value.isNull else {
                if required { throw .invalid("\(prefix)\(key) is required") }
                return nil
            }
            guard let s = value.stringValue else { throw .invalid("\(prefix)\(key) must be a string, not \(value.kindName)") }
            var blank = true
            for b in s.utf8 {
                if b < 32 || b == 127 { throw .invalid("\(prefix)\(key) must not hold control characters") }
                if b != 32 { blank = false }
            }
            guard !blank else { throw .invalid("\(prefix)\(key) must not be empty") }
            guard s.utf8.count <= max || s.count <= max else { throw .invalid("\(prefix)\(key) is longer than \(max) characters") }
            return s
        }
        func date(_ key: String) throws(OrderError) -> String? {
            guard let s = try text(key) else { return nil }
            guard Self.isDate(s) else { throw .invalid("\(prefix)\(key) must be a date YYYY-MM-DD, not \(JSON.string(s).serialized())") }
            return s
        }
        let orderId = try text("orderId", required: true, max: 64)!
        guard orderId.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 || $0 == 46 }) else {
            throw .invalid("\(prefix)orderId may hold only letters, digits, '-', '_' and '.'")
        }
        let model = try text("model", required: true, max: 64)!
        var options: [String] = []
        if let value = json["options"], !value.isNull {
            guard let items = value.arrayValue else { throw .invalid("\(prefix)options must be an array of option codes, not \(value.kindName)") }
            for (i, item) in items.enumerated() {
                guard let code = item.stringValue, !code.isEmpty else { throw .invalid("\(prefix)options[\(i)] must be an option code (a string)") }
                options.append(code)
            }
        }
        var draft = OrderDraft(orderId: orderId, model: model, options: options, customer: try text("customer"),
                               dueDate: try date("dueDate"), plannedDate: try date("plannedDate"))
        if let shift = try text("plannedShift", max: 64) {
            guard shifts.contains(shift) else {
                throw .invalid("\(prefix)plannedShift \(JSON.string(shift).serialized()) is not a shift of the plant (\(shifts.isEmpty ? "none defined" : shifts.joined(separator: ", ")))")
            }
            draft.plannedShift = shift
        }
        if let value = json["sequence"], !value.isNull {
            guard let n = value.intValue, n >= 0, value.doubleValue == Double(n) else {
                throw .invalid("\(prefix)sequence must be a whole number ≥ 0")
            }
            draft.sequence = n
        }
        return draft
    }

    /// Whether `s` is a real calendar date `YYYY-MM-DD`.
    public static func isDate(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 10, b[4] == 45, b[7] == 45 else { return false }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r { guard b[i] >= 48 && b[i] <= 57 else { return nil }; v = v * 10 + Int(b[i] - 48) }
            return v
        }
        guard let y = num(0..<4), let m = num(5..<7), let d = num(8..<10), (1...12).contains(m), d >= 1 else { return false }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        return d <= days
    }
}
