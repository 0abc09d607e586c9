@testable import Collector
import Consent
import Testing

@Suite struct WireTests {
    func parse(_ s: String) throws(WireError) -> [IncomingEvent] {
        let bytes = Array(s.utf8)
        let r: Result<[IncomingEvent], WireError> = bytes.withUnsafeBytes { b in
            Result { () throws(WireError) -> [IncomingEvent] in try Wire.parseBatch(b) }
        }
        return try r.get()
    }

    func error(_ s: String) -> String? {
        do { _ = try parse(s); return nil } catch { return error.description }
    }

    @Test func singleEventAndBatchParse() throws {
        let one = try parse(#"{"site":"abc123","url":"https://example.com/x","id":"u-1","props":{"plan":"pro","n":3,"ok":true},"value":12.5,"currency":"EUR","consent":{"analytics":true,"marketing":false},"subject":"0123456789abcdef","screen":1280,"engaged_ms":1500,"scroll":75}"#)
        #expect(one.count == 1)
        #expect(one[0].props.count == 3)
        #expect(one[0].consent == .granted(analytics: true, marketing: false))
        #expect(one[0].name == "pageview")
        let batch = try parse(#"{"events":[{"site":"abc123","url":"https://e.com/"},{"site":"abc123","name":"signup","url":"https://e.com/s","consent":"denied"}]}"#)
        #expect(batch.count == 2)
        #expect(batch[1].consent == .denied)
    }

    @Test(arguments: [
        #"{"site":"a b","url":"https://e.com/"}"#,
        #"{"site":"abc","url":"ftp://e.com/"}"#,
        #"{"site":"abc"}"#,
        #"{"site":"abc","url":"https://e.com/","extra":1}"#,
        #"{"site":"abc","url":"https://e.com/","props":{"a":{"b":1}}}"#,
        #"{"site":"abc","url":"https://e.com/","props":{"a":[1]}}"#,
        #"{"site":"abc","url":"https://e.com/","value":"12"}"#,
        #"{"site":"abc","url":"https://e.com/","currency":"usd","value":1}"#,
        #"{"site":"abc","url":"https://e.com/","currency":"USD"}"#,
        #"{"site":"abc","url":"https://e.com/","scroll":101}"#,
        #"{"site":"abc","url":"https://e.com/","screen":1.5}"#,
        #"{"site":"abc","url":"https://e.com/","consent":"maybe"}"#,
        #"{"site":"abc","url":"https://e.com/","subject":"short"}"#,
        #"{"events":[]}"#,
        #"{"events":[{"site":"abc","url":"https://e.com/"}],"x":1}"#,
        #"[1,2]"#,
        #"{"site":"abc","url":"https://e.com/","name":""}"#,
    ])
    func invalidEventsAreRefusedWithAReason(body: String) {
        #expect(error(body) != nil)
    }

    @Test func limitsAreEnforced() {
        let tooMany = "{\"events\":[" + Array(repeating: #"{"site":"abc","url":"https://e.com/"}"#, count: 51).joined(separator: ",") + "]}"
        #expect(error(tooMany)?.contains("at most 50") == true)
        let props = (0..<31).map { "\"k\($0)\":1" }.joined(separator: ",")
        #expect(error(#"{"site":"abc","url":"https://e.com/","props":{"# + props + "}}")?.contains("at most 30 props") == true)
        let longValue = String(repeating: "x", count: 257)
        #expect(error(#"{"site":"abc","url":"https://e.com/","props":{"a":""# + longValue + "\"}}") != nil)
        let longURL = "https://e.com/" + String(repeating: "a", count: 2000)
        #expect(error(#"{"site":"abc","url":""# + longURL + "\"}") != nil)
    }

    @Test func jsonParserHandlesEscapesAndRejectsMalformedInput() throws {
        let v = try JSONParser.parse(Array(#"{"a":"\u00e9\ud83d\ude00\n","b":[1,-2.5e3,true,null]}"#.utf8))
        #expect(v["a"] == .string("é😀\n"))
        #expect(v["b"] == .array([.number(1), .number(-2500), .bool(true), .null]))
        for bad in ["", "{", "{\"a\":}", "{\"a\":1,}", "[01]", "\"\\ud800\"", "{\"a\":1}x", "{'a':1}", "nul",
                    "{\"a\":1,\"a\":2}", String(repeating: "[", count: 10) + String(repeating: "]", count: 10),
                    "\"\u{01}\"", "1e999", #""a\u0000b""#] {
            #expect(throws: JSONError.self) { try JSONParser.parse(Array(bad.utf8)) }
        }
        #expect(throws: JSONError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }
}
