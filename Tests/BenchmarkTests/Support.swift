import Foundation
import PlantModel
import XCTest

/// A Modbus TCP station on loopback.
func modbusStation(id: String, port: UInt16, pollMs: Int = 50, timeoutMs: Int = 300, signals: [SignalConfig]) -> StationConfig {
    StationConfig(id: id, name: id, process: "welding", protocol: .modbus, endpoint: .modbusTCP(host: "127.0.0.1", port: port, unit: 1),
                  pollIntervalMs: pollMs, timeoutMs: timeoutMs, signals: signals)
}

func sig(_ name: String, _ address: String, _ type: DataType, length: Int? = nil) -> SignalConfig {
    SignalConfig(name: name, address: ModbusAddress.parse(address)!, type: type, length: length)
}
