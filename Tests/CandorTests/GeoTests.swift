import Foundation
@testable import Geo
import Testing

@Suite struct GeoTests {
    @Test func generatedFixtureResolvesIPv4IPv6AndMapped() throws {
        let geo = try MaxMindGeo(cityPath: Fixtures.cityDB, asnPath: Fixtures.asnDB)
        #expect(geo.lookup("81.2.69.142") == GeoResult(country: "GB", region: "England", city: "London"))
        #expect(geo.lookup("::ffff:81.2.69.142") == GeoResult(country: "GB", region: "England", city: "London"))
        #expect(geo.lookup("89.160.20.112") == GeoResult(country: "SE", region: "Östergötland County", city: "Linköping",
                                                          asn: 29518, asnOrg: "Bredband2 AB"))
        #expect(geo.lookup("2001:218::1") == GeoResult(country: "JP"))
        #expect(geo.lookup("2600:7000::1") == GeoResult(asn: 6939, asnOrg: "Hurricane Electric, Inc."))
        #expect(geo.lookup("12.81.92.1") == GeoResult(asn: 7018), "organisation is optional")
        #expect(geo.lookup("1.1.1.1") == .unknown)
        #expect(geo.lookup("not an ip") == .unknown)
        #expect(geo.status.city.contains("Candor-Test-City"))
    }

    @Test func coarseningKeepsOnlyWhatThePolicyAllows() {
        let full = GeoResult(country: "SE", region: "Östergötland County", city: "Linköping", asn: 29518, asnOrg: "Bredband2 AB")
        #expect(full.coarsened(to: .country, keepASN: true) == GeoResult(country: "SE", asn: 29518, asnOrg: "Bredband2 AB"))
        #expect(full.coarsened(to: .region, keepASN: false) == GeoResult(country: "SE", region: "Östergötland County"))
        #expect(full.coarsened(to: .none, keepASN: true) == .unknown)
        #expect(full.coarsened(to: .city, keepASN: true) == full)
    }

    @Test func withoutADatabaseEverythingIsUnknown() {
        #expect(NoGeo().lookup("81.2.69.142") == .unknown)
        #expect(NoGeo().status.city.hasPrefix("unknown"))
    }

    @Test func missingFileIsAClearError() {
        #expect(throws: GeoError.self) { try MaxMindGeo(cityPath: "/nonexistent.mmdb", asnPath: nil) }
    }

    @Test func replacedFileIsReloaded() throws {
        let dir = TempDir()
        let path = dir.file("city.mmdb")
        try FileManager.default.copyItem(atPath: Fixtures.asnDB, toPath: path)
        let geo = try MaxMindGeo(cityPath: path, asnPath: nil, reloadCheckInterval: 0)
        #expect(geo.lookup("81.2.69.142").city == nil)
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: Fixtures.cityDB, toPath: path)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(5)], ofItemAtPath: path)
        #expect(geo.lookup("81.2.69.142").city == "London")
    }

    /// Cross-check against MaxMind's own test databases when ../shared is beside the clone.
    @Test(.enabled(if: Fixtures.sharedGeoIP != nil)) func agreesWithMaxMindTestDatabases() throws {
        let dir = Fixtures.sharedGeoIP!
        let city = try MaxMindGeo(cityPath: dir + "/GeoLite2-City-Test.mmdb", asnPath: dir + "/GeoLite2-ASN-Test.mmdb")
        #expect(city.lookup("81.2.69.142").city == "London")
        #expect(city.lookup("81.2.69.142").region == "England")
        #expect(city.lookup("::ffff:81.2.69.142").country == "GB")
        #expect(city.lookup("89.160.20.112").city == "Linköping")
        let milton = city.lookup("216.160.83.56")
        #expect(milton.country == "US" && milton.region == "Washington" && milton.city == "Milton")
        #expect(city.lookup("2001:218::1").country == "JP")
        #expect(city.lookup("67.43.156.1").city == nil)
        #expect(city.lookup("89.160.20.112").asn == 29518)
        #expect(city.lookup("2600:7000::1").asnOrg == "Hurricane Electric, Inc.")
        #expect(city.lookup("12.81.96.1").asn == 7018)
        #expect(city.lookup("12.81.96.1").asnOrg == nil)
        #expect(city.lookup("1.1.1.1").country == nil)
        let country = try MaxMindGeo(cityPath: dir + "/GeoIP2-Country-Test.mmdb", asnPath: nil)
        #expect(country.lookup("2a02:cf40::1").country == "NO")
        #expect(country.lookup("74.209.24.1").country == "US")
    }
}

/// The dashboard's country shapes, from the PyPI package pygal_maps_world (the Makefile installs it).
@Suite struct WorldMapTests {
    @Test func countryShapesComeFromTheInstalledPackage() throws {
        let map = try #require(try WorldMap.load(), "make deps-run installs pygal_maps_world's worldmap.svg")
        #expect(map.countries.count == 184 && map.countries.isSuperset(of: ["DE", "US", "BR", "JP", "AU", "ZA", "IN", "GB", "SE", "SG", "MT", "MC"]))
        #expect(map.svg.utf8.count < 120_000, "\(map.svg.utf8.count) bytes")
        // Nothing of the source file but numbers and two-letter codes reaches the served SVG.
        #expect(map.svg.wholeMatch(of: /<svg xmlns="http:\/\/www.w3.org\/2000\/svg" viewBox="0 0 990 555"><g id="land">(<path id="[a-z]{2}" d="[-0-9 Mlz]+"\/>)+<\/g><\/svg>/) != nil)
    }

    @Test func pathsBecomeRingsOfTheirEndPoints() throws {
        let rings = try WorldMap.rings("m10 10c1 1 2 2 10 0h5v5l-15 0zM0 0L4 0 4 4z")
        #expect(rings.map { $0.map { [$0.0, $0.1] } } == [[[10, 10], [20, 10], [25, 10], [25, 15], [10, 15]], [[0, 0], [4, 0], [4, 4]]])
        #expect(throws: WorldMap.Malformed.self) { try WorldMap.rings("m0 0a1 1 0 0 1 2 2") }
        #expect(throws: WorldMap.Malformed.self) { try WorldMap(pygalSVG: "<svg></svg>") }
        // Hostile numbers fail cleanly (no trap converting them to integers).
        #expect(throws: WorldMap.Malformed.self) { try WorldMap.rings("m1e999 0l1 1") }
        #expect(throws: WorldMap.Malformed.self) { try WorldMap.rings("m0 0" + String(repeating: "l900000 0", count: 3)) }
    }
}
