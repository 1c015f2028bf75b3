/// A benchmark could not run (a peer did not start, clients did not connect …): the message says what.
public struct BenchError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
