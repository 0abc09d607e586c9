import Collector
import Consent
import Foundation
import Geo
import Store
import Storage
import Testing

@Suite struct ConsentTests {
    static let states: [(String, ConsentState)] = [
        ("unset", .unset), ("denied", .denied), ("analytics", .granted(analytics: true, marketing: false)),
        ("all", .granted(analytics: true, marketing: true)), ("marketing-only", .granted(analytics: false, marketing: true)),
    ]

    /// The documented table (README, "Consent"), written out independently of the implementation.
    static func expected(mode: ConsentMode, counting: Bool, state: String, dnt: Bool, gpc: Bool) -> String {
        let fallback = counting ? "anonymous" : "drop"
        if dnt || gpc { return fallback }
        switch mode {
        case .cookieless, .cnilExempt: return fallback
        case .optIn:
            switch state {
            case "analytics": return "identified"
            case "all": return "identified+marketing"
            default: return fallback
            }
        case .optOut:
            switch state {
            case "denied", "marketing-only": return fallback
            case "analytics": return "identified"
            default: return "identified+marketing"
            }
        }
    }

    static func label(_ d: ConsentDecision) -> String {
        switch d {
        case .drop: "drop"
        case .anonymous: "anonymous"
        case .identified(let marketing): marketing ? "identified+marketing" : "identified"
        }
    }

    @Test func everyCellOfTheMatrixDecidesAsDocumented() {
        var cells = 0
        for mode in ConsentMode.allCases {
            for counting in [true, false] {
                var policy = Policy.default
                policy.mode = mode
                policy.anonymousCounting = counting
                for (name, state) in Self.states {
                    for dnt in [false, true] {
                        for gpc in [false, true] {
                            let d = ConsentDecider.decide(policy: policy, state: state,
                                                          signals: .init(doNotTrack: dnt, globalPrivacyControl: gpc))
                            #expect(Self.label(d) == Self.expected(mode: mode, counting: counting, state: name, dnt: dnt, gpc: gpc),
                                    "mode=\(mode) counting=\(counting) state=\(name) dnt=\(dnt) gpc=\(gpc)")
                            cells += 1
                        }
                    }
                }
            }
        }
        #expect(cells == ConsentMode.allCases.count * 2 * 5 * 4)
    }

    @Test func signalsAreIgnoredOnlyWhenThePolicySaysSo() {
        var policy = Policy.default
        policy.mode = .optOut
        policy.honorDNT = false
        #expect(ConsentDecider.decide(policy: policy, state: .unset, signals: .init(doNotTrack: true)) == .identified(marketing: true))
        #expect(ConsentDecider.decide(policy: policy, state: .unset, signals: .init(globalPrivacyControl: true)) == .anonymous)
    }

    /// The stored fields of each cell: identified rows carry the subject hash, city-level geo and
    /// (with marketing) the click id; anonymous rows carry none of these; drops store nothing.
    @Test func storedFieldsFollowTheDecision() async throws {
        let geo = try MaxMindGeo(cityPath: Fixtures.cityDB, asnPath: Fixtures.asnDB)
        for mode in ConsentMode.allCases {
            for counting in [true, false] {
                var policy = Policy.default
                policy.name = "matrix"
                policy.mode = mode
                policy.anonymousCounting = counting
                let t = try TestCollector(policy: policy, geo: geo)
                for (name, state) in Self.states {
                    for dnt in [false, true] {
                        for gpc in [false, true] {
                            let id = "\(name)-\(dnt)-\(gpc)"
                            let event = IncomingEvent(site: t.site.id, url: "https://example.com/p?gclid=CLICKVALUE", id: id,
                                                      consent: state, subject: "subject-0123456789abcdef")
                            try await t.ingest([event], ip: "89.160.20.112", signals: .init(doNotTrack: dnt, globalPrivacyControl: gpc))
                        }
                    }
                }
                let rows = Dictionary(uniqueKeysWithValues: try t.database.events(site: t.site.id).map { ($0.clientID!, $0) })
                for (name, _) in Self.states {
                    for dnt in [false, true] {
                        for gpc in [false, true] {
                            let want = Self.expected(mode: mode, counting: counting, state: name, dnt: dnt, gpc: gpc)
                            let row = rows["\(name)-\(dnt)-\(gpc)"]
                            let cell = "mode=\(mode) counting=\(counting) state=\(name) dnt=\(dnt) gpc=\(gpc)"
                            switch want {
                            case "drop":
                                #expect(row == nil, "\(cell)")
                            case "anonymous":
                                #expect(row?.decision == .anonymous, "\(cell)")
                                #expect(row?.subject == nil, "\(cell)")
                                #expect(row?.clickID == nil, "\(cell)")
                                // cnil-exempt: no click id kind either, and the geo lookup sees the truncated
                                // address (89.160.20.0, which the fixture database does not hold).
                                #expect(row?.clickIDKind == (mode == .cnilExempt ? nil : "gclid"), "\(cell)")
                                #expect(row?.country == (mode == .cnilExempt ? nil : "SE"), "\(cell)")
                                #expect(row?.city == nil && row?.region == nil, "\(cell)")
                            default:
                                #expect(row?.decision == .identified, "\(cell)")
                                #expect(row?.subject != nil, "\(cell)")
                                #expect(row?.city == "Linköping", "\(cell)")
                                #expect(row?.clickID == (want == "identified+marketing" ? "CLICKVALUE" : nil), "\(cell)")
                            }
                        }
                    }
                }
            }
        }
    }
}

@Suite struct FormValueTests {
    @Test func formValuesNeedMarketingConsentAndThePolicyAllowlist() async throws {
        var policy = Policy.default
        policy.name = "forms"
        policy.formFieldAllowlist = ["plan"]
        let t = try TestCollector(policy: policy)
        let props: [(String, PropValue)] = [("form", .string("signup")), ("fields", .string("plan,email")),
                                            ("field.plan", .string("pro")), ("field.email", .string("a@example.com"))]
        for (id, consent) in [("m", ConsentState.granted(analytics: true, marketing: true)),
                              ("a", .granted(analytics: true, marketing: false)), ("u", .unset)] {
            try await t.ingest([IncomingEvent(site: t.site.id, name: "form_submit", url: "https://example.com/", id: id,
                                              props: props, consent: consent)])
        }
        let byID = Dictionary(uniqueKeysWithValues: try t.database.events(site: t.site.id).map { ($0.clientID!, $0.props ?? "") })
        #expect(byID["m"] == #"{"form":"signup","fields":"plan,email","field.plan":"pro"}"#)
        #expect(byID["a"] == #"{"form":"signup","fields":"plan,email"}"#)
        #expect(byID["u"] == #"{"form":"signup","fields":"plan,email"}"#)
    }
}
