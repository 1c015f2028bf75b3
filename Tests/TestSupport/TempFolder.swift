import Foundation
import XCTest

/// A fresh folder under the system's temp directory, removed by ``remove()`` or when the object goes.
public final class TempFolder: @unchecked Sendable {
    public let url: URL
    /// The folder's path.
    public var path: String { url.path }

    public init(prefix: String = "mes-test") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// The path of `name` inside the folder.
    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    public func remove() { try? FileManager.default.removeItem(at: url) }

    deinit { remove() }
}

/// A temp folder removed when `test` ends (its teardown).
public func makeTempDirectory(_ test: XCTestCase, prefix: String = "mes-test") -> URL {
    let folder = TempFolder(prefix: prefix)
    test.addTeardownBlock { folder.remove() }
    return folder.url
}
