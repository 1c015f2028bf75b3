import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Serves the files under one root folder for GET and HEAD; `/` and folders answer their `index.html`.
///
/// Never serves outside the root: a path with a `..` or `.` segment, a NUL or a backslash (also when
/// percent-encoded) is refused, and the resolved real path (symlinks followed) must lie under the
/// root's real path. Missing or refused files answer a 404 JSON error. Files are read per request
/// on the calling loop thread. HTML and JSON get `Cache-Control: no-cache`, other files a short
/// `max-age` so a redeployed dashboard shows up within minutes.
public struct StaticFiles: HTTPResponder {
    /// The root's resolved real path.
    public let root: String
    public var assetMaxAge: Int

    /// Throws ``HTTPError`` (500) if `root` is not an existing folder.
    public init(root: String, assetMaxAge: Int = 300) throws {
        guard let resolved = Self.realPath(root) else {
            throw HTTPError(500, "static file root \(root) does not exist")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HTTPError(500, "static file root \(root) is not a folder")
        }
        self.root = resolved
        self.assetMaxAge = assetMaxAge
    }

    public func respond(to request: HTTPRequest) throws -> HTTPReply {
        guard request.method == .get || request.method == .head else {
            throw HTTPError(405, "\(request.method.rawValue) is not allowed on \(request.path)", headers: ["Allow": "GET, HEAD"])
        }
        let notFound = HTTPError.notFound("no such file: \(request.path)")
        let path = request.path
        guard !path.contains("\0"), !path.contains("\\") else { throw notFound }
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !segments.contains(where: { $0 == ".." || $0 == "." }) else { throw notFound }
        var candidate = root + "/" + segments.joined(separator: "/")
        if path.hasSuffix("/") || segments.isEmpty { candidate += "/index.html" }
        guard var resolved = Self.realPath(candidate), resolved.hasPrefix(root + "/") else { throw notFound }
        var info = stat()
        guard stat(resolved, &info) == 0 else { throw notFound }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard let index = Self.realPath(resolved + "/index.html"), index.hasPrefix(root + "/") else { throw notFound }
            resolved = index
        }
        guard let data = FileManager.default.contents(atPath: resolved) else { throw notFound }
        let type = Self.contentType(forPath: resolved)
        var headers: HTTPHeaders = ["Content-Type": type, "X-Content-Type-Options": "nosniff"]
        if type.hasPrefix("text/html") {
            headers.add("Cache-Control", "no-cache")
            for (name, value) in Self.pageHeaders { headers.add(name, value) }
        } else if type.hasPrefix("application/json") {
            headers.add("Cache-Control", "no-cache")
        } else {
            headers.add("Cache-Control", "public, max-age=\(assetMaxAge)")
        }
        return .response(HTTPResponse(status: 200, headers: headers, body: [UInt8](data)))
    }

    /// Headers of every page: no framing by other sites (clickjacking), scripts, styles and
    /// connections only from this server, no plugins, no `<base>` rewriting.
    public static let pageHeaders: [(String, String)] = [
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
        ("Referrer-Policy", "no-referrer"),
    ]

    /// The `Content-Type` for a file name's extension (`application/octet-stream` if unknown).
    public static func contentType(forPath path: String) -> String {
        let ext = path.split(separator: "/").last.flatMap { name in
            name.lastIndex(of: ".").map { name[name.index(after: $0)...].lowercased() }
        } ?? ""
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json", "map": return "application/json; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "ico": return "image/x-icon"
        case "woff2": return "font/woff2"
        case "woff": return "font/woff"
        case "txt": return "text/plain; charset=utf-8"
        case "csv": return "text/csv; charset=utf-8"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
