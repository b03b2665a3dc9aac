@testable import RedisClient
import Testing

/// Pure rules: no server.
@Suite struct RedisScriptCommandTests {
    /// A script's call is `EVALSHA sha numkeys keys… arguments…`, each argument as its bytes.
    @Test func aScriptCallIsEvalshaWithItsKeysCountedAndItsArgumentsAfterThem() {
        let script = RedisScript("return 1", name: "one.lua")
        let command = script.command(sha: "abc", keys: ["{t}job:7", "{t}queue:gold"], arguments: [Int64(7), "f.mp4", 2, [UInt8]([0, 255])])
        let expected: [[UInt8]] = [
            Array("EVALSHA".utf8), Array("abc".utf8), Array("2".utf8), Array("{t}job:7".utf8), Array("{t}queue:gold".utf8),
            Array("7".utf8), Array("f.mp4".utf8), Array("2".utf8), [0, 255],
        ]
        #expect(command.arguments == expected)
        #expect(command.name == "EVALSHA")
        #expect(script.command(sha: "abc", keys: [], arguments: []).arguments == [Array("EVALSHA".utf8), Array("abc".utf8), Array("0".utf8)])
    }
}
