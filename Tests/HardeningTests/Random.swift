import Foundation
import TestSupport

/// Ways to damage a valid input: flip, insert, delete, duplicate, truncate, splice in interesting bytes.
enum Mutator {
    static let interesting: [[UInt8]] = [
        [0], [0xFF], [0x7F], [0x80], [0xC0], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
        Array("\r\n".utf8), Array("\n".utf8), Array("\r\n\r\n".utf8), Array(":".utf8), Array(" ".utf8),
        Array("%".utf8), Array("%zz".utf8), Array("\\u".utf8), Array("\\ud800".utf8), Array("\"".utf8),
        Array("{".utf8), Array("[".utf8), Array("}".utf8), Array("]".utf8), Array(",".utf8),
        Array("-".utf8), Array("1e999".utf8), Array("99999999999999999999".utf8), Array("-0".utf8),
        Array("Content-Length: 99999999999999999999\r\n".utf8), Array("Transfer-Encoding: chunked\r\n".utf8),
    ]

    /// One to `maxSteps` random damages of `input`.
    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64, maxSteps: Int = 4) -> [UInt8] {
        var data = input
        for _ in 0...rng.below(maxSteps) {
            let at = data.isEmpty ? 0 : rng.below(data.count + 1)
            switch rng.below(7) {
            case 0 where !data.isEmpty:
                let i = rng.below(data.count)
                data[i] ^= UInt8(1 << rng.below(8))
            case 1:
                data.insert(contentsOf: rng.bytes(1 + rng.below(4)), at: at)
            case 2 where !data.isEmpty:
                let i = rng.below(data.count)
                data.removeSubrange(i..<min(data.count, i + 1 + rng.below(8)))
            case 3 where !data.isEmpty:
                let i = rng.below(data.count)
                let piece = Array(data[i..<min(data.count, i + 1 + rng.below(16))])
                data.insert(contentsOf: piece, at: at)
            case 4:
                data = Array(data.prefix(at))
            default:
                data.insert(contentsOf: rng.element(interesting), at: at)
            }
        }
        return data
    }
}
