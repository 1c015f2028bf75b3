import PlantModel

/// One Modbus read: a range of one table, and the signals it carries.
public struct ModbusReadRequest: Sendable, Equatable, CustomStringConvertible {
    public var table: ModbusTable
    public var start: Int
    /// Registers (register tables) or bits (coils, discrete inputs).
    public var count: Int
    /// Indices into the station's `signals`.
    public var signals: [Int]

    public init(table: ModbusTable, start: Int, count: Int, signals: [Int]) {
        self.table = table
        self.start = start
        self.count = count
        self.signals = signals
    }

    /// `hr:10…18` (inclusive end), or `hr:10` for a single register.
    public var description: String {
        count <= 1 ? "\(table.rawValue):\(start)" : "\(table.rawValue):\(start)…\(start + count - 1)"
    }
}

/// How a station's signals are read: the fewest requests per table, merged across small gaps.
///
/// Pure value. When a merged request fails with an illegal-address exception the adapter calls
/// ``split(at:)`` and keeps the split plan from then on.
public struct ModbusReadPlan: Sendable, Equatable {
    public private(set) var requests: [ModbusReadRequest]

    public init(requests: [ModbusReadRequest]) { self.requests = requests }

    /// Plans reads of `signals` (those with a Modbus address).
    ///
    /// - Parameters:
    ///   - maxRegisterGap: unused registers a request may span to merge two neighbours.
    ///   - maxBitGap: the same for coils and discrete inputs.
    ///   - maxRegisters, maxBits: the largest request (Modbus allows 125 registers, 2000 bits).
    public init(signals: [SignalConfig], maxRegisterGap: Int = 8, maxBitGap: Int = 64,
                maxRegisters: Int = 125, maxBits: Int = 2000) {
        var result: [ModbusReadRequest] = []
        for table in ModbusTable.allCases {
            let members = signals.indices
                .compactMap { i -> (index: Int, start: Int, count: Int)? in
                    guard let address = signals[i].address, address.table == table else { return nil }
                    return (i, address.index, max(1, signals[i].registerCount))
                }
                .sorted { ($0.start, $0.count, $0.index) < ($1.start, $1.count, $1.index) }
            let gap = table.isRegister ? maxRegisterGap : maxBitGap
            let limit = table.isRegister ? maxRegisters : maxBits
            var current: ModbusReadRequest?
            for member in members {
                if var open = current {
                    let openEnd = open.start + open.count
                    let newEnd = max(openEnd, member.start + member.count)
                    if member.start <= openEnd + gap && newEnd - open.start <= limit {
                        open.count = newEnd - open.start
                        open.signals.append(member.index)
                        current = open
                        continue
                    }
                    result.append(open)
                }
                current = ModbusReadRequest(table: table, start: member.start, count: member.count, signals: [member.index])
            }
            if let open = current { result.append(open) }
        }
        requests = result
    }

    /// Replaces the request at `index` by one request per signal (same order); returns where they
    /// now are. A single-signal request stays as it is.
    @discardableResult
    public mutating func split(at index: Int, signals: [SignalConfig]) -> Range<Int> {
        let request = requests[index]
        guard request.signals.count > 1 else { return index..<(index + 1) }
        let parts = request.signals.map { i in
            ModbusReadRequest(table: request.table, start: signals[i].address!.index,
                              count: max(1, signals[i].registerCount), signals: [i])
        }
        requests.replaceSubrange(index...index, with: parts)
        return index..<(index + parts.count)
    }
}
