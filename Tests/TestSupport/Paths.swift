import Foundation

/// The repository root, found from this file's path (Tests/TestSupport/Paths.swift).
public let repoRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The Python interpreter with the test peers installed: `MES_TEST_PYTHON` (set by `tools/test`),
/// else the repository's venv, `.build/venv` (see README.md, "Tests").
public func peerPython() -> String {
    if let configured = ProcessInfo.processInfo.environment["MES_TEST_PYTHON"], !configured.isEmpty { return configured }
    return repoRoot.appendingPathComponent(".build/venv/bin/python3").path
}

/// Path of a built executable of this package (`mes-server`, `station-sim`): next to the test
/// bundle in `.build/<triple>/debug/`, else `.build/debug/`.
public func productPath(_ name: String) -> String {
    var dir = Bundle.main.bundleURL
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return repoRoot.appendingPathComponent(".build/debug/\(name)").path
}
