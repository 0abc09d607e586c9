@testable import Collector
import Privacy
import Testing
import Traffic

@Suite struct MinimizeTests {
    @Test(arguments: [
        ("/blog/2024/05/hello-world", "/blog/2024/05/hello-world"),
        ("/users/jane.doe@example.com/profile", "/users/:email/profile"),
        ("/users/jane.doe%40example.com", "/users/:email"),
        ("/order/12345678/receipt", "/order/:num/receipt"),
        ("/reset/3f2a9c1e-6b7d-4e21-9a0b-2c4d5e6f7a8b", "/reset/:token"),
        ("/confirm/aB3dE5fG7hJ9kL1mN3pQ", "/confirm/:token"),
        ("/introducing-our-wonderful-product", "/introducing-our-wonderful-product"),
        ("/s/0123456789abcdef0123", "/s/:token"),
        ("/call/+44-20-7946-0958", "/call/+44-20-7946-0958"),
        ("", "/"),
    ])
    func pathsAreRedacted(input: String, expected: String) {
        #expect(Minimize.path(Substring(input)) == expected)
    }

    /// A percent-encoded NUL (in a campaign, a referrer) is dropped: no store gets one.
    @Test func percentEncodedNULIsDropped() {
        #expect(Minimize.percentDecoded("news%00letter%2500+x") == "newsletter%00 x")
        #expect(!Minimize.percentDecoded("%00%00").utf8.contains(0))
    }

    @Test func longPathsAreTruncated() {
        let p = Minimize.path(Substring("/" + String(repeating: "a/", count: 600)))
        #expect(p.utf8.count == Minimize.maxPathLength)
    }

    @Test func freeTextValuesLoseEmailsAndLongNumbers() {
        #expect(Minimize.value("contact bob@example.org now") == "contact [email] now")
        #expect(Minimize.value("card 4111111111111111") == "card [num]")
        #expect(Minimize.value("plan pro 2025") == "plan pro 2025")
    }
}

@Suite struct ClassifyTests {
    func attribution(_ url: String, _ referrer: String?, identifiedMarketing: Bool = false) -> Attribution {
        Classifier.attribution(page: LightURL(url), referrer: referrer, siteDomains: ["example.com"], keepClickID: identifiedMarketing,
                               referrers: TrafficClassifier.installed.referrers)
    }

    @Test func sourcesAreClassified() {
        #expect(attribution("https://example.com/", nil).acquisition.sourceType == "direct")
        #expect(attribution("https://example.com/", "https://www.google.co.uk/search?q=x").acquisition.sourceType == "organic")
        #expect(attribution("https://example.com/", "https://duckduckgo.com/").acquisition.sourceType == "organic")
        #expect(attribution("https://example.com/", "https://t.co/abc").acquisition.sourceType == "social")
        #expect(attribution("https://example.com/", "https://mail.google.com/mail/u/0").acquisition.sourceType == "email")
        #expect(attribution("https://example.com/", "https://blog.other.org/post").acquisition.sourceType == "referral")
        #expect(attribution("https://example.com/?utm_source=nl&utm_medium=email", nil).acquisition.sourceType == "email")
        #expect(attribution("https://example.com/?utm_medium=cpc&utm_source=google", "https://google.com/").acquisition.sourceType == "paid")
        #expect(attribution("https://example.com/?gclid=abc", "https://www.google.com/").acquisition.sourceType == "paid")
        #expect(attribution("https://example.com/?utm_medium=social", nil).acquisition.sourceType == "social")
    }

    @Test func selfReferralsAreDirectAndDropTheHost() {
        let a = attribution("https://example.com/b", "https://shop.example.com/a?x=1")
        #expect(a.acquisition.sourceType == "direct")
        #expect(a.referrerHost == nil)
    }

    @Test func referrerKeepsHostAndOnlyClassifyingPaths() {
        let social = attribution("https://example.com/", "https://www.reddit.com/r/swift/comments/abc?utm=1")
        #expect(social.referrerHost == "reddit.com")
        #expect(social.referrerPath == "/r/swift/comments/abc")
        let other = attribution("https://example.com/", "https://someblog.net/private/page")
        #expect(other.referrerHost == "someblog.net")
        #expect(other.referrerPath == nil)
    }

    @Test func utmAndClickIDKinds() {
        let a = attribution("https://example.com/?utm_source=News&utm_medium=Email&utm_campaign=spring&utm_term=t&utm_content=c&fbclid=SECRET", nil)
        #expect(a.utmSource == "News")
        #expect(a.utmMedium == "email")
        #expect(a.utmCampaign == "spring")
        #expect(a.utmTerm == "t")
        #expect(a.utmContent == "c")
        #expect(a.clickIDKind == "fbclid")
        #expect(a.clickID == nil)
        let identified = attribution("https://example.com/?msclkid=VALUE", nil, identifiedMarketing: true)
        #expect(identified.clickIDKind == "msclkid")
        #expect(identified.clickID == "VALUE")
    }

    @Test func userAgentsAreReduced() {
        func reduced(_ ua: String) -> ReducedUserAgent { ReducedUserAgent(TrafficClassifier.installed.agent(ua)) }
        let chrome = reduced("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
        #expect(chrome == ReducedUserAgent(browser: "Chrome", browserVersion: "131", os: "Windows", device: "desktop"))
        let edge = reduced("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86")
        #expect(edge.browser == "Edge")
        let iphone = reduced("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
        #expect(iphone == ReducedUserAgent(browser: "Mobile Safari", browserVersion: "17", os: "iOS", device: "mobile"))
        let firefox = reduced("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0")
        #expect(firefox == ReducedUserAgent(browser: "Firefox", browserVersion: "128", os: "macOS", device: "desktop"))
        let tablet = reduced("Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
        #expect(tablet.device == "tablet")
    }

    @Test func botsAndPrefetchAreDetected() {
        let t = TrafficClassifier.installed
        #expect(t.agent("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").bot != nil)
        #expect(t.agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36").bot != nil)
        #expect(t.agent("curl/8.0.1").bot != nil)
        #expect(t.agent("").bot == .header)
        #expect(t.agent(chromeUA, purpose: "prefetch;prerender").bot == .speculative)
        #expect(t.agent(chromeUA).bot == nil)
    }

    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() {
        let r = ClientAddressResolver(trustedProxies: [CIDR("10.0.0.0/8")!, CIDR("::1")!])
        #expect(r.resolve(peer: "203.0.113.9", forwardedFor: "81.2.69.142") == "203.0.113.9")
        #expect(r.resolve(peer: "10.1.2.3", forwardedFor: "81.2.69.142") == "81.2.69.142")
        #expect(r.resolve(peer: "10.1.2.3", forwardedFor: "1.2.3.4, 81.2.69.142, 10.9.9.9") == "81.2.69.142")
        #expect(r.resolve(peer: "::1", forwardedFor: "[2001:218::1]:443") == "2001:218::1")
        #expect(r.resolve(peer: "10.1.2.3", forwardedFor: "garbage") == "10.1.2.3")
        #expect(r.resolve(peer: "::ffff:10.0.0.1", forwardedFor: "81.2.69.142") == "81.2.69.142")
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("nonsense") == nil)
    }
}

@Suite struct UserAgentCacheTests {
    @Test func cachedAnswersEqualFreshOnesAndTheCacheStaysBounded() {
        let cache = UserAgentCache(traffic: .installed, capacity: 2)
        let agents = [chromeUA, "Googlebot/2.1 (+http://www.google.com/bot.html)",
                      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                      "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/131.0.0.0 Safari/537.36"]
        for _ in 0..<3 {
            for ua in agents {
                let entry = cache.lookup(ua)
                let fresh = TrafficClassifier.installed.agent(ua)
                #expect(entry.bot == fresh.bot)
                #expect(entry.reduced == ReducedUserAgent(fresh))
            }
        }
        #expect(cache.lookup(agents[1]).bot != nil && cache.lookup(agents[0]).bot == nil)
        #expect(cache.count <= 2)
    }
}
