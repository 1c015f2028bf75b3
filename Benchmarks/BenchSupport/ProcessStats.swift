import CBench
import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Resident set size of this process, from /proc/self/statm.
public func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Bytes this process has allocated with malloc and not freed (reused pages count, unlike in RSS).
public func heapInUseBytes() -> Int { Int(cmalloc_in_use_bytes()) }

/// Memory per client in KiB from the growth of RSS and of the heap in use while `clients`
/// connected: the larger of the two (RSS misses reused pages, the heap misses what is not malloc's).
public func memoryPerClientKiB(rss: Int, heap: Int, clients: Int) -> Double {
    Double(max(0, rss, heap)) / Double(max(1, clients)) / 1024
}

/// Samples this process's memory (RSS and heap in use) every `intervalMs` on a thread of its own,
/// from ``start()`` to ``stop()``.
public final class MemorySampler: Sendable {
    public struct Sample: Sendable {
        public var residentBytes: Int
        public var heapInUseBytes: Int
    }

    private let intervalMs: Int
    private let state = Locked<(samples: [Sample], running: Bool)>(([], true))

    public init(intervalMs: Int = 100) { self.intervalMs = intervalMs }

    public func start() {
        Thread { [self] in
            while state.withLock({ $0.running }) {
                let sample = Sample(residentBytes: residentBytes(), heapInUseBytes: heapInUseBytes())
                state.withLock { $0.samples.append(sample) }
                usleep(UInt32(intervalMs * 1000))
            }
        }.start()
    }

    /// Stops sampling; the samples in time order.
    public func stop() -> [Sample] {
        state.withLock { state in
            state.running = false
            return state.samples
        }
    }
}

/// Open file descriptors of this process.
public func openDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// User + system CPU time of this process so far (all threads), in microseconds.
public func processCPUMicroseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

/// CLOCK_REALTIME in ns: the clock of the kernel's socket receive timestamps, shared by processes.
public func realtimeNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The 1-minute load average (the benchmarks share the machine), from /proc/loadavg.
public func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
    return String(text.split(separator: " ").first ?? "?")
}

/// Raises the open-file limit to 65,536 (or the hard limit) for many-connection benchmarks; returns the limit now in force.
@discardableResult
public func raiseFileLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
    let wanted: rlim_t = 65536
    if limit.rlim_max < wanted { limit.rlim_max = wanted }
    limit.rlim_cur = wanted
    if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) != 0 {
        _ = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
    var now = rlimit()
    _ = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &now)
    return Int(now.rlim_cur)
}

/// User + system CPU seconds of process `pid` so far (all its threads), from /proc/PID/stat; nil once it is gone.
public func processCPUSeconds(pid: Int32) -> Double? {
    procStatCPUSeconds(path: "/proc/\(pid)/stat")?.seconds
}

/// User + system CPU seconds of each thread of process `pid` so far, keyed by "TID NAME" (the
/// thread's name from /proc, e.g. `modbus.loop0`).
public func threadCPUSeconds(pid: Int32) -> [String: Double] {
    guard let tids = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [:] }
    var result: [String: Double] = [:]
    for tid in tids {
        guard let stat = procStatCPUSeconds(path: "/proc/\(pid)/task/\(tid)/stat") else { continue }
        result["\(tid) \(stat.name)"] = stat.seconds
    }
    return result
}

/// utime + stime (fields 14 and 15) and the command name of a /proc stat file.
private func procStatCPUSeconds(path: String) -> (name: String, seconds: Double)? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8),
          let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
    let name = String(text[text.index(after: open)..<close])
    // Fields after the name start with field 3 (state): utime is field 14, stime field 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (name, (user + system) / Double(sysconf(Int32(_SC_CLK_TCK))))
}
