import Foundation

/// Which SQL a ``Database`` speaks.
public enum SQLDialect: Sendable, Equatable {
    case sqlite
    case postgres
}

/// The dialect step: the plant's SQL is written once, in SQLite's dialect; for PostgreSQL each
/// statement is rewritten once, when it is prepared (README "PostgreSQL", docs/ARCHITECTURE.md
/// "Storage").
///
/// What it rewrites, outside string literals and quoted names:
/// - `?` → `$1`, `$2` … (parameters in order);
/// - column types: `INTEGER` → `BIGINT` (SQLite integers are 64-bit), `REAL` → `DOUBLE PRECISION`,
///   `BLOB` → `BYTEA`; `INTEGER PRIMARY KEY` (with or without `AUTOINCREMENT`) → an identity column; `TEXT` columns of
///   `CREATE TABLE` / `ADD COLUMN` get `COLLATE "C"` (byte order, as SQLite compares);
/// - a table with rowid (no `WITHOUT ROWID`, no `INTEGER PRIMARY KEY`) gets a `rowid` identity
///   column, so `rowid` in queries means what it does in SQLite; `WITHOUT ROWID` is dropped;
/// - `INSERT OR IGNORE` → `… ON CONFLICT DO NOTHING`; `INSERT OR REPLACE` → `… ON CONFLICT (primary
///   key) DO UPDATE SET` every other column (the key from the catalog, `uniqueKeys`);
/// - `CROSS JOIN t ON …` → `JOIN t ON …`;
/// - two-argument `min(a, b)` / `max(a, b)` → `LEAST` / `GREATEST`; `ifnull` → `COALESCE`;
///   `LIKE` → `ILIKE` (SQLite's LIKE ignores ASCII case); `json_each` / `json_extract` →
///   `mes_json_each` / `mes_json_extract` (functions the storage migration creates on PostgreSQL);
/// - the name `user` (a reserved word in PostgreSQL) is quoted;
/// - `BEGIN IMMEDIATE` / `DEFERRED` / `EXCLUSIVE` → `BEGIN`.
///
/// A statement that needs more (triggers, SQLite-only functions) carries its own PostgreSQL text
/// (``Migration/init(version:name:sql:postgres:)``).
public enum PostgresDialect {
    /// `sql` (one or more statements) in PostgreSQL's dialect. `uniqueKeys` gives a table's
    /// unique keys (primary key first) for `INSERT OR REPLACE`: the first whose columns are all
    /// inserted is the conflict target.
    public static func translate(_ sql: String, uniqueKeys: (String) -> [[String]] = { _ in [] }) -> String {
        let tokens = tokenize(sql)
        var statements: [[Token]] = [[]]
        for token in tokens {
            statements[statements.count - 1].append(token)
            if token.kind == .punct && token.text == ";" { statements.append([]) }
        }
        var parameter = 0
        return statements.map { rewrite($0, parameter: &parameter, uniqueKeys: uniqueKeys) }.joined()
    }

    /// Functions the plant's SQL uses that PostgreSQL lacks, created (or replaced) at each start
    /// before the migrations: `mes_json_each(text)` (SQLite's `json_each` over an object or an
    /// array: `key`, `value` as text, `type` as SQLite names it), `mes_json_extract(text, path)`
    /// (a number at `$.name` or `$."name"`, else NULL: the measurement filter), `sum(boolean)`
    /// (SQLite sums comparisons as 0 and 1), and `mes_refuse_change(message)`, the trigger function
    /// that refuses changes of an append-only table with that message.
    public static let compatibilityFunctions = #"""
        CREATE OR REPLACE FUNCTION mes_json_value(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
            SELECT CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}' WHEN 'null' THEN NULL
                WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1' ELSE '0' END ELSE v::text END $$;
        CREATE OR REPLACE FUNCTION mes_json_type(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
            SELECT CASE jsonb_typeof(v)
                WHEN 'number' THEN CASE WHEN v::text ~ '^-?[0-9]+$' THEN 'integer' ELSE 'real' END
                WHEN 'boolean' THEN v::text WHEN 'string' THEN 'text' ELSE jsonb_typeof(v) END $$;
        CREATE OR REPLACE FUNCTION mes_json_each(doc text) RETURNS TABLE (key text, value text, type text)
        LANGUAGE sql IMMUTABLE AS $$
            SELECT e.key, mes_json_value(e.value), mes_json_type(e.value)
            FROM jsonb_each(CASE WHEN jsonb_typeof(doc::jsonb) = 'object' THEN doc::jsonb ELSE '{}'::jsonb END) e
            UNION ALL
            SELECT (a.n - 1)::text, mes_json_value(a.v), mes_json_type(a.v)
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(doc::jsonb) = 'array' THEN doc::jsonb ELSE '[]'::jsonb END)
                WITH ORDINALITY a(v, n) $$;
        CREATE OR REPLACE FUNCTION mes_json_extract(doc text, path text) RETURNS double precision
        LANGUAGE sql IMMUTABLE AS $$
            SELECT CASE WHEN jsonb_typeof(x) = 'number' THEN (x #>> '{}')::double precision END
            FROM (SELECT (doc::jsonb) -> btrim(regexp_replace(path, '^\$\.', ''), '"') AS x) found $$;
        CREATE OR REPLACE FUNCTION mes_count_true(total bigint, item boolean) RETURNS bigint
        LANGUAGE sql IMMUTABLE AS $$ SELECT total + CASE WHEN item THEN 1 ELSE 0 END $$;
        CREATE OR REPLACE AGGREGATE sum(boolean) (SFUNC = mes_count_true, STYPE = bigint, INITCOND = '0');
        CREATE OR REPLACE FUNCTION mes_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;
        """#

    // MARK: Tokens

    struct Token: Equatable {
        enum Kind { case word, string, quoted, parameter, punct, space, number }
        var kind: Kind
        var text: String
        var upper: String { kind == .word ? text.uppercased() : text }
    }

    static func tokenize(_ sql: String) -> [Token] {
        let chars = Array(sql.unicodeScalars)
        var tokens: [Token] = []
        var i = 0
        func take(_ kind: Token.Kind, _ start: Int, _ end: Int) {
            var text = ""
            text.unicodeScalars.append(contentsOf: chars[start..<end])
            tokens.append(Token(kind: kind, text: text))
        }
        while i < chars.count {
            let c = chars[i]
            let start = i
            if c == "'" || c == "\"" {
                i += 1
                while i < chars.count {
                    if chars[i] == c {
                        if i + 1 < chars.count && chars[i + 1] == c { i += 2; continue }
                        i += 1
                        break
                    }
                    i += 1
                }
                take(c == "'" ? .string : .quoted, start, i)
            } else if c == "-" && i + 1 < chars.count && chars[i + 1] == "-" {
                while i < chars.count && chars[i] != "\n" { i += 1 }
                take(.space, start, i)
            } else if c == "/" && i + 1 < chars.count && chars[i + 1] == "*" {
                i += 2
                while i + 1 < chars.count && !(chars[i] == "*" && chars[i + 1] == "/") { i += 1 }
                i = min(chars.count, i + 2)
                take(.space, start, i)
            } else if c.properties.isWhitespace {
                while i < chars.count && chars[i].properties.isWhitespace { i += 1 }
                take(.space, start, i)
            } else if c == "?" {
                i += 1
                while i < chars.count && ("0"..."9").contains(chars[i]) { i += 1 }
                take(.parameter, start, i)
            } else if c == "_" || c.properties.isAlphabetic {
                while i < chars.count && (chars[i] == "_" || chars[i] == "$" || chars[i].properties.isAlphabetic || ("0"..."9").contains(chars[i])) { i += 1 }
                take(.word, start, i)
            } else if ("0"..."9").contains(c) {
                while i < chars.count && (("0"..."9").contains(chars[i]) || chars[i] == "." || chars[i] == "e" || chars[i] == "E") { i += 1 }
                take(.number, start, i)
            } else {
                i += 1
                take(.punct, start, i)
            }
        }
        return tokens
    }

    // MARK: Rewriting one statement

    private static func rewrite(_ input: [Token], parameter: inout Int, uniqueKeys: (String) -> [[String]]) -> String {
        var tokens = input
        let words = tokens.enumerated().filter { $0.element.kind != .space }.map(\.offset)
        func upper(_ n: Int) -> String { n < words.count ? tokens[words[n]].upper : "" }

        let isCreateTable = upper(0) == "CREATE" && upper(1) == "TABLE"
        let isAlterAdd = upper(0) == "ALTER" && upper(1) == "TABLE"
        var suffix = ""

        // BEGIN IMMEDIATE → BEGIN
        if upper(0) == "BEGIN", ["IMMEDIATE", "DEFERRED", "EXCLUSIVE"].contains(upper(1)) {
            tokens[words[1]].text = ""
        }

        // INSERT OR IGNORE / OR REPLACE
        if upper(0) == "INSERT" && upper(1) == "OR" && (upper(2) == "IGNORE" || upper(2) == "REPLACE") && upper(3) == "INTO" {
            let replace = upper(2) == "REPLACE"
            tokens[words[1]].text = ""
            tokens[words[2]].text = ""
            let table = tokens[words[4]].text
            if replace {
                // The column list after the table name.
                var columns: [String] = []
                if upper(5) == "(" {
                    var n = 6
                    while n < words.count && upper(n) != ")" {
                        if tokens[words[n]].kind == .word || tokens[words[n]].kind == .quoted { columns.append(tokens[words[n]].text.lowercased()) }
                        n += 1
                    }
                }
                let key = uniqueKeys(table.lowercased()).first { Set($0).isSubset(of: columns) } ?? []
                let others = columns.filter { !key.contains($0) }
                if key.isEmpty {
                    suffix = " ON CONFLICT DO NOTHING"
                } else if others.isEmpty {
                    suffix = " ON CONFLICT (\(key.joined(separator: ", "))) DO NOTHING"
                } else {
                    suffix = " ON CONFLICT (\(key.joined(separator: ", "))) DO UPDATE SET "
                        + others.map { "\(quoteIfReserved($0)) = excluded.\(quoteIfReserved($0))" }.joined(separator: ", ")
                }
            } else {
                suffix = " ON CONFLICT DO NOTHING"
            }
        }

        // Per token.
        var depth = 0
        var tableDepthOpen = false
        var hasIntegerKey = false
        var withoutRowid = false
        var closingParen: Int?
        var previousWord = ""
        var previousKind = Token.Kind.space
        var i = 0
        while i < tokens.count {
            let token = tokens[i]
            defer { if token.kind != .space { previousKind = token.kind } }
            switch token.kind {
            case .parameter:
                parameter += 1
                tokens[i].text = "$\(parameter)"
            case .punct:
                if token.text == "(" {
                    depth += 1
                    if isCreateTable && depth == 1 { tableDepthOpen = true }
                } else if token.text == ")" {
                    if isCreateTable && depth == 1 && tableDepthOpen && closingParen == nil { closingParen = i }
                    depth -= 1
                }
            case .word:
                let word = token.upper
                let next = nextWords(tokens, after: i, count: 3)
                switch word {
                case "INTEGER":
                    if next.count >= 2 && next[0] == "PRIMARY" && next[1] == "KEY" {
                        // SQLite gives a rowid key a value when the insert has none: an identity column.
                        tokens[i].text = "BIGINT GENERATED BY DEFAULT AS IDENTITY"
                        if next.count >= 3 && next[2] == "AUTOINCREMENT" {
                            removeNextWord(&tokens, after: i, matching: "AUTOINCREMENT")
                        }
                        if isCreateTable && depth == 1 { hasIntegerKey = true }
                    } else {
                        tokens[i].text = "BIGINT"
                    }
                case "REAL": tokens[i].text = "DOUBLE PRECISION"
                case "BLOB": tokens[i].text = "BYTEA"
                case "TEXT":
                    // A type follows its column's name (a column called `text` follows `(` or `,`).
                    if (isCreateTable && depth == 1) || isAlterAdd, previousKind == .word || previousKind == .quoted, previousWord != "AS" {
                        tokens[i].text = "TEXT COLLATE \"C\""
                    }
                case "WITHOUT":
                    if next.first == "ROWID" {
                        withoutRowid = true
                        tokens[i].text = ""
                        removeNextWord(&tokens, after: i, matching: "ROWID")
                    }
                case "LIKE": tokens[i].text = "ILIKE"
                case "CROSS":
                    // SQLite's `CROSS JOIN t ON …` (a join order hint) is an inner join.
                    if next.first == "JOIN" && joinHasOn(tokens, after: i) { tokens[i].text = "" }
                case "IFNULL": tokens[i].text = "COALESCE"
                case "JSON_EACH": tokens[i].text = "mes_json_each"
                case "JSON_EXTRACT": tokens[i].text = "mes_json_extract"
                case "USER": tokens[i].text = "\"user\""
                case "MIN", "MAX":
                    if let open = nextNonSpace(tokens, after: i), tokens[open].text == "(", topLevelCommas(tokens, open: open) > 0 {
                        tokens[i].text = word == "MIN" ? "LEAST" : "GREATEST"
                    }
                default: break
                }
                previousWord = word
            default: break
            }
            i += 1
        }
        qualifyUpsertColumns(&tokens)
        if isCreateTable, !withoutRowid, !hasIntegerKey, let closingParen {
            tokens[closingParen].text = ",\n    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY)"
        }

        var text = tokens.map(\.text).joined()
        if !suffix.isEmpty {
            // Before the closing `;` and trailing space, if any.
            var end = text.endIndex
            while end > text.startIndex {
                let before = text.index(before: end)
                if text[before] == ";" || text[before].isWhitespace { end = before } else { break }
            }
            text.insert(contentsOf: suffix, at: end)
        }
        return text
    }

    /// In `INSERT INTO t (…) … ON CONFLICT … DO UPDATE SET a = f(a, excluded.a) WHERE b …`, a bare
    /// column on the right of `=` or in the WHERE is ambiguous in PostgreSQL (the row or the
    /// proposed one): SQLite means the row, so it becomes `t.a`.
    private static func qualifyUpsertColumns(_ tokens: inout [Token]) {
        let words = tokens.indices.filter { tokens[$0].kind != .space && !tokens[$0].text.isEmpty }
        guard words.count > 4, tokens[words[0]].upper == "INSERT", tokens[words[1]].upper == "INTO" else { return }
        let table = tokens[words[2]].text
        var columns = Set<String>()
        if tokens[words[3]].text == "(" {
            var n = 4
            while n < words.count && tokens[words[n]].text != ")" {
                if tokens[words[n]].kind == .word { columns.insert(tokens[words[n]].text.lowercased()) }
                n += 1
            }
        }
        guard let set = words.indices.first(where: { n in
            n >= 2 && tokens[words[n]].upper == "SET" && tokens[words[n - 1]].upper == "UPDATE" && tokens[words[n - 2]].upper == "DO"
        }) else { return }
        var target = true   // the next word is an assignment's target (never qualified)
        var inWhere = false
        var depth = 0
        for n in (set + 1)..<words.count {
            let i = words[n]
            let token = tokens[i]
            if token.kind == .punct {
                if token.text == "(" { depth += 1 }
                if token.text == ")" { depth -= 1 }
                if token.text == "," && depth == 0 && !inWhere { target = true }
                if token.text == "=" && depth == 0 && !inWhere { target = false }
                continue
            }
            guard token.kind == .word else { continue }
            if token.upper == "WHERE" && depth == 0 { inWhere = true; target = false; continue }
            if target { continue }
            let previous = n > 0 ? tokens[words[n - 1]].text : ""
            let next = n + 1 < words.count ? tokens[words[n + 1]].text : ""
            if previous != "." && next != "." && next != "(" && columns.contains(token.text.lowercased()) {
                tokens[i].text = table + "." + token.text
            }
        }
    }

    private static let reserved: Set<String> = ["user", "order", "group", "table", "limit", "offset", "window"]

    private static func quoteIfReserved(_ name: String) -> String {
        reserved.contains(name) ? "\"\(name)\"" : name
    }

    private static func nextWords(_ tokens: [Token], after index: Int, count: Int) -> [String] {
        var result: [String] = []
        var i = index + 1
        while i < tokens.count && result.count < count {
            if tokens[i].kind == .word { result.append(tokens[i].upper) } else if tokens[i].kind != .space { break }
            i += 1
        }
        return result
    }

    private static func removeNextWord(_ tokens: inout [Token], after index: Int, matching word: String) {
        var i = index + 1
        while i < tokens.count {
            if tokens[i].kind == .word && tokens[i].upper == word { tokens[i].text = ""; return }
            i += 1
        }
    }

    /// Whether the join after `index` has an ON clause (before the next JOIN, WHERE … at this depth).
    private static func joinHasOn(_ tokens: [Token], after index: Int) -> Bool {
        var depth = 0
        var i = index + 1
        var seenJoin = false
        while i < tokens.count {
            let token = tokens[i]
            if token.kind == .punct {
                if token.text == "(" { depth += 1 }
                if token.text == ")" { if depth == 0 { return false }; depth -= 1 }
            } else if token.kind == .word && depth == 0 {
                switch token.upper {
                case "ON": return true
                case "JOIN": if seenJoin { return false }; seenJoin = true
                case "WHERE", "GROUP", "ORDER", "LIMIT", "CROSS", "LEFT", "INNER", "UNION": return false
                default: break
                }
            }
            i += 1
        }
        return false
    }

    private static func nextNonSpace(_ tokens: [Token], after index: Int) -> Int? {
        var i = index + 1
        while i < tokens.count && tokens[i].kind == .space { i += 1 }
        return i < tokens.count ? i : nil
    }

    /// Commas at the top level of the parenthesis opened at `open`.
    private static func topLevelCommas(_ tokens: [Token], open: Int) -> Int {
        var depth = 0
        var commas = 0
        for token in tokens[open...] where token.kind == .punct {
            if token.text == "(" { depth += 1 }
            if token.text == ")" { depth -= 1; if depth == 0 { break } }
            if token.text == "," && depth == 1 { commas += 1 }
        }
        return commas
    }
}
