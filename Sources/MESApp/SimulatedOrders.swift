import Foundation
import API
import Pipeline
import Orders
import PlantModel
import Quality
import Runtime
import Simulation

/// Where the simulated plant's orders go: the server in-process (`mes-server --simulate`) or
/// over HTTP (`station-sim --orders URL`). Errors carry the API's status (409 is expected often).
/// The in-process sink is any ``OrderBackend`` (the pipeline's stage).
protocol OrderSink: Sendable {
    func create(_ orders: [OrderDraft]) throws
    func release(orderId: String, vehicleId: String) throws
}

/// A refusal with the API's status.
struct OrderSinkError: Error, CustomStringConvertible {
    var status: Int
    var message: String
    var description: String { "\(status): \(message)" }
}

/// Creates each shift's plan (orders for the shift's capacity, a fixed model and option mix, in
/// sequence) and releases the next planned order to each VIN the simulator puts on the line, so
/// a simulated plant shows plan, sequence and order statuses (README "Orders and build specs").
///
/// Order ids are `SIM-YYYYMMDD-SHIFT-NNNN`: a restart inside a shift finds its plan already there
/// and goes on releasing the orders still planned. Runs on its own serial queue; the simulator's
/// thread never waits for the server.
// @unchecked Sendable: the mutable state (plan, pending, handled) is touched only on `queue`.
final class SimulatedOrders: @unchecked Sendable {
    let config: PlantConfig
    let sink: any OrderSink
    let taktS: Double
    let logger: Logger
    private let queue = DispatchQueue(label: "simulated-orders")
    /// The shift planned last (`date|shift`) and its orders not yet tried.
    private var plannedKey: String?
    private var pending: [String] = []
    private var adHoc = 0
    /// VINs handled already (released to an order or refused), bounded.
    private var handled = Set<String>()

    init(config: PlantConfig, sink: any OrderSink, taktS: Double, logger: Logger) {
        self.config = config
        self.sink = sink
        self.taktS = max(1, taktS)
        self.logger = logger
    }

    /// The model and options of the `n`-th vehicle of a plan: every model in turn, options on
    /// some (each option on every (k + 2)-th vehicle, k its position).
    static func variant(_ n: Int, config: PlantConfig) -> (model: String, options: [String]) {
        let models = config.models.keys.sorted()
        let options = config.options.keys.sorted()
        let model = models[n % models.count]
        let chosen = options.enumerated().filter { n % ($0.offset + 2) == 1 }.map(\.element)
        return (model, chosen)
    }

    /// Called with the VINs the simulator released at `time` (any thread).
    func vehiclesReleased(_ vins: [String], at time: Date) {
        queue.async { [self] in
            for vin in vins {
                if handled.count > 10_000 { handled.removeAll() }
                guard handled.insert(vin).inserted else { continue }
                release(vin, at: time)
            }
        }
    }

    private func release(_ vin: String, at time: Date) {
        planShift(at: time)
        while !pending.isEmpty {
            let id = pending.removeFirst()
            do {
                try sink.release(orderId: id, vehicleId: vin)
                return
            } catch let error as OrderSinkError where error.status == 409 {
                if error.message.contains("vehicle \(vin) is bound") {
                    pending.insert(id, at: 0)
                    logger.debug("VIN \(vin) has an order already (\(error.message))")
                    return
                }
                continue   // released in an earlier run: the next one
            } catch {
                logger.warning("simulated order \(id) for \(vin) not released: \(error)")
                return
            }
        }
        // The plan is used up: an order outside the plan.
        adHoc += 1
        let (model, options) = Self.variant(adHoc, config: config)
        let id = "SIM-X-\(Int(time.timeIntervalSince1970))-\(adHoc)"
        do {
            try sink.create([OrderDraft(orderId: id, model: model, options: options, customer: "simulation")])
            try sink.release(orderId: id, vehicleId: vin)
        } catch {
            logger.debug("order outside the plan for \(vin) not released: \(error)")
        }
    }

    /// Creates the plan of the shift at `time` once (the shift's capacity at the takt).
    private func planShift(at time: Date) {
        guard let found = config.shift(at: time) else { return }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = config.timezone
        let c = calendar.dateComponents([.year, .month, .day], from: found.start)
        let date = String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
        let key = date + "|" + found.shift.name
        guard key != plannedKey else { return }
        plannedKey = key
        // Started inside a shift: its plan is what is left of it.
        let count = min(2_000, max(1, Int(found.end.timeIntervalSince(max(found.start, time)) / taktS)))
        let prefix = "SIM-\(date.replacingOccurrences(of: "-", with: ""))-\(found.shift.name)-"
        var drafts: [OrderDraft] = []
        for n in 0..<count {
            let (model, options) = Self.variant(n, config: config)
            drafts.append(OrderDraft(orderId: prefix + String(format: "%04d", n + 1), model: model, options: options,
                                     customer: "simulation", dueDate: date, plannedDate: date, plannedShift: found.shift.name,
                                     sequence: Int64(n + 1)))
        }
        do {
            try sink.create(drafts)
            logger.info("planned \(count) simulated orders for shift \(found.shift.name) of \(date)")
        } catch let error as OrderSinkError where error.status == 409 {
            // A restart inside the shift: create only the ones missing.
            for draft in drafts { try? sink.create([draft]) }
            logger.info("shift \(found.shift.name) of \(date) is planned already: going on with its orders")
        } catch {
            logger.warning("the simulated plan of shift \(found.shift.name) was not created: \(error)")
        }
        pending = drafts.map(\.orderId)
    }
}

/// The server's own pipeline (`mes-server --simulate`), acting as user `simulation`.
struct StageOrderSink: OrderSink {
    let stage: any OrderBackend
    static let principal = Principal(user: "simulation", role: .engineer)

    func create(_ orders: [OrderDraft]) throws {
        do { _ = try stage.createOrders(orders, batch: true, by: Self.principal) } catch let e as OrderError {
            throw OrderSinkError(status: e.kind == .conflict ? 409 : e.kind == .notFound ? 404 : 422, message: e.message)
        }
    }

    func release(orderId: String, vehicleId: String) throws {
        do { _ = try stage.releaseOrder(id: orderId, vehicleId: vehicleId, by: Self.principal) } catch let e as OrderError {
            throw OrderSinkError(status: e.kind == .conflict ? 409 : e.kind == .notFound ? 404 : 422, message: e.message)
        }
    }
}

/// A server over HTTP (`station-sim --orders http://HOST:PORT --token T`).
struct HTTPOrderSink: OrderSink {
    let host: String
    let port: UInt16
    let token: String

    /// Parses `http://HOST:PORT` (loopback or a plant address).
    init?(url: String, token: String) {
        guard url.hasPrefix("http://") else { return nil }
        let authority = url.dropFirst(7).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let parts = authority.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]), !parts[0].isEmpty else { return nil }
        host = String(parts[0])
        self.port = port
        self.token = token
    }

    func create(_ orders: [OrderDraft]) throws {
        let body = JSON.array(orders.map { o in
            .obj([("orderId", .string(o.orderId)), ("model", .string(o.model)), ("options", .array(o.options.map { .string($0) })),
                  ("customer", .str(o.customer)), ("dueDate", .str(o.dueDate)), ("plannedDate", .str(o.plannedDate)),
                  ("plannedShift", .str(o.plannedShift)), ("sequence", o.sequence.map { .int($0) } ?? .null)])
        })
        try post("/api/orders", body)
    }

    func release(orderId: String, vehicleId: String) throws {
        try post("/api/orders/\(orderId)/release", .obj([("vehicleId", .string(vehicleId))]))
    }

    private func post(_ path: String, _ body: JSON) throws {
        let payload = Array(body.serialized().utf8)
        let fd = try Socket.connect(host: host, port: port, timeoutMs: 2000)
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: 30_000)
        let head = "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nAuthorization: Bearer \(token)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n\r\n"
        let (status, bodyText) = try Socket.exchangeClosing(fd, request: Array(head.utf8) + payload)
        guard (200..<300).contains(status) else {
            let message = (try? JSON.parse(bodyText))?["error"]?["message"]?.stringValue ?? bodyText
            throw OrderSinkError(status: status, message: message)
        }
    }
}

/// `station-sim --orders URL --token T`: the simulator's vehicles get orders on that server.
public enum SimulatedOrdersSetup {
    public static func attach(to plant: PlantSimulationService, url: String, token: String, logger: Logger) throws {
        guard let sink = HTTPOrderSink(url: url, token: token) else {
            throw SimulationOrdersError(message: "--orders takes http://HOST:PORT, not \"\(url)\"")
        }
        let feeder = SimulatedOrders(config: plant.config, sink: sink, taktS: plant.taktS ?? 60, logger: logger.named("orders"))
        plant.onVehiclesReleased { vins, time in feeder.vehiclesReleased(vins, at: time) }
    }
}

struct SimulationOrdersError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
