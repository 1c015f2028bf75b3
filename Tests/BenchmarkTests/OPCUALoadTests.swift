import ComponentBenchmarks
import Foundation
import XCTest

final class OPCUALoadTests: XCTestCase {
    /// 1,000 monitored items on our server, every value changed repeatedly: the last value of every item arrives.
    func testThousandMonitoredItemsAllDeliverTheirLastValue() async throws {
        let figures = try await OPCUABenchmark.notifications(items: 1000, seconds: 1, updateMs: 50)
        print("OPCUA load: \(figures)")
        XCTAssertEqual(figures.itemsUpToDate, 1000)
    }
}
