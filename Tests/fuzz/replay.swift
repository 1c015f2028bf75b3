import Foundation
import PlantModel
import Runtime
import Simulation

/// libFuzzer entry: reads the bytes as a replay recording (JSON Lines). Any ``RecordingError`` is
/// fine if it is one line and names a line of the input; a crash or hang is not. What was read is
/// written back with ``RecordingWriter`` and read again: the written form must read without error,
/// give the same number of samples, and be a fixed point (writing it again gives the same bytes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let input = "/tmp/mes-fuzz-replay-\(getpid()).in.jsonl"
    write(path: input, bytes: UnsafeRawBufferPointer(start: data, count: size))
    let lines = UnsafeRawBufferPointer(start: data, count: size).reduce(1) { $0 + ($1 == 10 ? 1 : 0) }
    let first = read(input, lines: lines)
    let once = roundTrip(first.samples, tag: "1")
    let second = read(once.path, lines: Int.max)
    if second.error != nil || second.samples.count != first.samples.count {
        fatalError("the writer's form of \(first.samples.count) samples read back as \(second.samples.count), error \(String(describing: second.error))")
    }
    let twice = roundTrip(second.samples, tag: "2")
    if once.bytes != twice.bytes {
        let a = once.bytes.split(separator: 10, omittingEmptySubsequences: false)
        let b = twice.bytes.split(separator: 10, omittingEmptySubsequences: false)
        let at = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        let line = { (l: [ArraySlice<UInt8>]) in at < l.count ? String(decoding: l[at], as: UTF8.self) : "(none)" }
        fatalError("writing a recording twice gave different bytes at line \(at + 1): \(line(a)) then \(line(b))")
    }
    return 0
}

private typealias Sample = (time: Date, station: String, signal: String, value: SignalValue)

private func read(_ path: String, lines: Int) -> (samples: [Sample], error: RecordingError?) {
    guard let reader = try? RecordingReader(path: path, carryForward: false) else { fatalError("cannot open \(path)") }
    var samples: [Sample] = []
    do {
        while let poll = try reader.next() {
            if poll.station.isEmpty && poll.readings.isEmpty { fatalError("an empty poll") }
            for reading in poll.readings {
                guard let value = reading.value else { fatalError("a sample without a value") }
                samples.append((poll.time, poll.station, reading.name, value))
            }
        }
    } catch let error as RecordingError {
        let text = error.description
        if text.contains("\n") { fatalError("error text of more than one line: \(text)") }
        if error.line < 1 || error.line > lines { fatalError("error names line \(error.line) of \(lines): \(text)") }
        return (samples, error)
    } catch {
        fatalError("not a RecordingError: \(error)")
    }
    return (samples, nil)
}

private func roundTrip(_ samples: [Sample], tag: String) -> (path: String, bytes: [UInt8]) {
    let path = "/tmp/mes-fuzz-replay-\(getpid()).out\(tag).jsonl"
    do {
        let writer = try RecordingWriter(path: path, mode: .everyPoll)
        for s in samples { try writer.write(time: s.time, station: s.station, signal: s.signal, value: s.value) }
        try writer.close()
    } catch {
        fatalError("writing \(samples.count) samples failed: \(error)")
    }
    return (path, contents(of: path))
}

private func write(path: String, bytes: UnsafeRawBufferPointer) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(path)") }
    var offset = 0
    while offset < bytes.count {
        let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        guard n > 0 else { fatalError("write failed") }
        offset += n
    }
    close(fd)
}

private func contents(of path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { fatalError("cannot read \(path)") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { break }
        bytes += chunk[0..<n]
    }
    return bytes
}
