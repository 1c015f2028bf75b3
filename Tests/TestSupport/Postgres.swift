import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A throw-away PostgreSQL cluster for tests: initdb into a folder under /tmp, postgres on
/// 127.0.0.1 and a free port with its socket in that folder (README "PostgreSQL", `tools/lib.sh`
/// `start_pg` does the same in shell).
///
/// As root, the server programs run as the `postgres` user (initdb and postgres refuse root).
/// A watchdog process stops the cluster and removes its folder when the test process ends, even
/// by a crash; ``remove()`` does it at once.
public final class PostgresCluster: @unchecked Sendable {
    /// The cluster's folder: `data/` (the data directory), the socket, `server.log`.
    public let directory: String
    /// The TCP port on 127.0.0.1.
    public let port: UInt16
    public var dataDirectory: String { directory + "/data" }
    /// The server's log file.
    public var logFile: String { directory + "/server.log" }

    public enum ClusterError: Error, CustomStringConvertible {
        case missing(String), failed(String)
        public var description: String {
            switch self {
            case .missing(let text), .failed(let text): text
            }
        }
    }

    /// The folder of the newest installed PostgreSQL's server programs.
    public static var binFolder: String? {
        let base = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        return versions.compactMap(Int.init).sorted().last.map { "\(base)/\($0)/bin" }
    }

    private init(directory: String, port: UInt16) {
        self.directory = directory
        self.port = port
    }

    /// A URL for `database` as the superuser `postgres` (no password: the test cluster trusts loopback).
    public func url(database: String = "postgres") -> String {
        "postgresql://postgres@127.0.0.1:\(port)/\(database)"
    }

    /// Creates (initdb, C locale, UTF-8, trust) and starts a new cluster on a free port.
    public static func create() throws -> PostgresCluster {
        let directory = try makeFolder()
        let cluster = PostgresCluster(directory: directory, port: try freePort())
        cluster.startWatchdog()
        do {
            try cluster.runPG("initdb", ["-D", cluster.dataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            try cluster.start()
        } catch {
            cluster.remove()
            throw error
        }
        return cluster
    }

    /// A streaming replica of `primary` (pg_basebackup -R, with a fast checkpoint: a spread one took
    /// over a minute on a quiet primary; it follows the primary until
    /// ``promote()``), started on a port of its own.
    public static func replica(of primary: PostgresCluster) throws -> PostgresCluster {
        let directory = try makeFolder()
        let cluster = PostgresCluster(directory: directory, port: try freePort())
        cluster.startWatchdog()
        do {
            try cluster.runPG("pg_basebackup", ["-R", "-c", "fast", "-D", cluster.dataDirectory, "-h", "127.0.0.1", "-p", "\(primary.port)", "-U", "postgres", "-X", "stream"])
            try cluster.start()
        } catch {
            cluster.remove()
            throw error
        }
        return cluster
    }

    /// Starts the server (again) and waits until it accepts connections.
    public func start() throws {
        try runPG("pg_ctl", ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60",
                             "-o", "-c listen_addresses=127.0.0.1 -p \(port) -k \(directory)", "start"])
    }

    /// Stops the server: `pg_ctl -m fast stop` (clients are disconnected, a clean shutdown).
    public func stop() {
        _ = try? runPG("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"])
    }

    /// Kills the postmaster with SIGKILL, as a crash of the database machine would (its backends
    /// end when they notice). ``start()`` recovers from the WAL.
    public func kill() {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let pid = text.split(separator: "\n").first.flatMap({ Int32($0) }) else { return }
        Glibc.kill(pid, SIGKILL)
        _ = eventually(timeout: 10) { Glibc.kill(pid, 0) != 0 }
    }

    /// Promotes a replica to a primary (`pg_ctl promote`, waits until it accepts writes).
    public func promote() throws {
        try runPG("pg_ctl", ["-D", dataDirectory, "-w", "promote"])
    }

    /// Runs SQL with psql as `postgres` on `database`; returns what psql printed (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        let result = try spawnAndWait("/usr/bin/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url(database: database), "-c", sql])
        guard result.status == 0 else { throw ClusterError.failed("psql \(sql): \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the server (immediate) and removes its folder.
    public func remove() {
        _ = try? runPG("pg_ctl", ["-D", dataDirectory, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Helpers

    private static func makeFolder() throws -> String {
        var template = Array("/tmp/mes-pg-test.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ClusterError.failed("mkdtemp failed: errno \(errno)")
        }
        let directory = String(cString: made)
        chmod(directory, 0o700)
        if geteuid() == 0, let user = getpwnam("postgres") {
            chown(directory, user.pointee.pw_uid, user.pointee.pw_gid)
        }
        return directory
    }

    /// Runs a PostgreSQL server program (as `postgres` when we are root); throws with its output on failure.
    @discardableResult
    private func runPG(_ program: String, _ arguments: [String]) throws -> String {
        guard let bin = Self.binFolder else {
            throw ClusterError.missing("PostgreSQL server programs not found under /usr/lib/postgresql (tools/test installs the Debian package postgresql)")
        }
        let result: (status: Int32, output: String)
        if geteuid() == 0 {
            result = try spawnAndWait("/usr/sbin/runuser", ["-u", "postgres", "--", "\(bin)/\(program)"] + arguments)
        } else {
            result = try spawnAndWait("\(bin)/\(program)", arguments)
        }
        guard result.status == 0 else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)).map { "\nserver.log: " + $0.suffix(2000) } ?? ""
            throw ClusterError.failed("\(program) \(arguments.joined(separator: " ")) exited \(result.status): \(result.output)\(log)")
        }
        return result.output
    }

    /// A detached shell that waits for this test process to end, then stops the cluster and
    /// removes its folder (so a crashed test run leaves no server behind).
    private func startWatchdog() {
        guard let bin = Self.binFolder else { return }
        let asPG = geteuid() == 0 ? "/usr/sbin/runuser -u postgres -- " : ""
        let script = """
            trap '' INT TERM HUP
            while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done
            [ -d '\(dataDirectory)' ] && \(asPG)'\(bin)/pg_ctl' -D '\(dataDirectory)' -m immediate -w stop >/dev/null 2>&1
            rm -rf '\(directory)'
            """
        _ = try? spawn("/usr/bin/setsid", ["/bin/sh", "-c", script], output: "/dev/null")
    }
}

/// Starts `executable` with its output appended to the file `output` (stdin from /dev/null, no
/// other descriptors inherited); returns its pid. posix_spawn, not Foundation's `Process`: these
/// run during a test's first use of the fixture, and a server they start must hold no pipe of ours.
private func spawn(_ executable: String, _ arguments: [String], output: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // No other descriptor of ours goes to the child (a server started by it would keep our pipes open).
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
        if let fd = Int32(name), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
    }
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for arg in argv { free(arg) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    guard rc == 0 else { throw PostgresCluster.ClusterError.failed("cannot start \(executable): errno \(rc)") }
    return pid
}

/// Runs `executable` to its end (killed after `timeout` seconds); returns its exit status and output.
func spawnAndWait(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> (status: Int32, output: String) {
    let file = "/tmp/mes-pg-run-\(getpid())-\(UUID().uuidString).log"
    defer { unlink(file) }
    let pid = try spawn(executable, arguments, output: file)
    let deadline = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    while true {
        let done = waitpid(pid, &status, WNOHANG)
        if done == pid { break }
        if done < 0 && errno != EINTR { break }
        if Date() > deadline { kill(pid, SIGKILL) }
        usleep(5_000)
    }
    let output = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
    let exited = (status & 0x7f) == 0
    return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
}

/// The PostgreSQL server of this test process, and a fresh database per test.
///
/// Uses the server `MES_TEST_PG` names (an admin URL; `tools/test` starts one with `start_pg`), or
/// else starts its own throw-away ``PostgresCluster`` once per test process, stopped at exit.
///
/// ```swift
/// let url = try PostgresFixture.shared().newDatabase(for: self)   // dropped at teardown
/// ```
public final class PostgresFixture: Sendable {
    /// The admin URL (database `postgres`).
    public let adminURL: String
    /// The cluster started for this process (nil when `MES_TEST_PG` named one).
    public let cluster: PostgresCluster?

    private init(adminURL: String, cluster: PostgresCluster?) {
        self.adminURL = adminURL
        self.cluster = cluster
    }

    private static let instance: Result<PostgresFixture, any Error> = Result {
        if let url = ProcessInfo.processInfo.environment["MES_TEST_PG"], !url.isEmpty {
            return PostgresFixture(adminURL: url, cluster: nil)
        }
        let cluster = try PostgresCluster.create()
        atexit { if case .success(let fixture) = PostgresFixture.instance { fixture.cluster?.remove() } }
        return PostgresFixture(adminURL: cluster.url(), cluster: cluster)
    }

    /// The fixture (starts the cluster on first use); throws when no server can be started.
    public static func shared() throws -> PostgresFixture { try instance.get() }

    /// The URL of `database` on this server (the admin URL with its database name replaced).
    public func url(database: String) -> String {
        var base = adminURL
        if let query = base.firstIndex(of: "?") { base = String(base[..<query]) }
        if let scheme = base.range(of: "://"), let slash = base[scheme.upperBound...].firstIndex(of: "/") {
            base = String(base[..<slash])
        }
        return base + "/" + database
    }

    /// Creates an empty database `t_<random>`; returns its URL. Drop it with ``dropDatabase(_:)``.
    public func newDatabase() throws -> String {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try psql("CREATE DATABASE \(name)")
        return url(database: String(name))
    }

    /// ``newDatabase()``, dropped when `test` ends (its teardown).
    public func newDatabase(for test: XCTestCase) throws -> String {
        let url = try newDatabase()
        test.addTeardownBlock { self.dropDatabase(url) }
        return url
    }

    /// Drops a database made by ``newDatabase()`` (its connections are ended first).
    public func dropDatabase(_ url: String) {
        guard let name = url.split(separator: "/").last?.split(separator: "?").first else { return }
        _ = try? psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs SQL on the admin database with psql; returns what it printed (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        let result = try spawnAndWait("/usr/bin/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url(database: database), "-c", sql])
        guard result.status == 0 else { throw PostgresCluster.ClusterError.failed("psql \(sql): \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
