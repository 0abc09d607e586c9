#!/usr/bin/perl
# Generates the GeoIP test fixtures used by the Swift tests, with Debian's
# libmaxmind-db-writer-perl. Addresses and values follow MaxMind's published
# test data (see ../shared/testdata/geoip/README.md when present); the data is fake.
#   perl scripts/make-geo-fixtures.pl Tests/CandorTests/Fixtures
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $dir = shift or die "usage: $0 OUTPUT_DIR\n";

my %city_types = (
    city => 'map', country => 'map', subdivisions => ['array', 'map'], names => 'map',
    en => 'utf8_string', iso_code => 'utf8_string', geoname_id => 'uint32',
);
my $city = MaxMind::DB::Writer::Tree->new(
    ip_version => 6, record_size => 28, database_type => 'Candor-Test-City',
    languages => ['en'], description => { en => 'Candor test fixture (fake data)' },
    alias_ipv6_to_ipv4 => 1, map_key_type_callback => sub { $city_types{ $_[0] } },
    remove_reserved_networks => 0,
);
sub place {
    my ($cc, $region_code, $region, $cityname) = @_;
    my %r = (country => { iso_code => $cc, names => { en => $cc } });
    $r{subdivisions} = [ { iso_code => $region_code, names => { en => $region } } ] if $region;
    $r{city} = { names => { en => $cityname } } if $cityname;
    return \%r;
}
$city->insert_network('81.2.69.142/31', place('GB', 'ENG', 'England', 'London'));
$city->insert_network('89.160.20.112/28', place('SE', 'E', "\x{d6}sterg\x{f6}tland County", "Link\x{f6}ping"));
$city->insert_network('216.160.83.56/29', place('US', 'WA', 'Washington', 'Milton'));
$city->insert_network('2001:218::/32', place('JP'));
$city->insert_network('175.16.199.0/24', place('CN', '22', 'Jilin Sheng', 'Changchun'));
open my $fh, '>:raw', "$dir/candor-city-test.mmdb" or die $!;
$city->write_tree($fh);
close $fh;

my %asn_types = (autonomous_system_number => 'uint32', autonomous_system_organization => 'utf8_string');
my $asn = MaxMind::DB::Writer::Tree->new(
    ip_version => 6, record_size => 28, database_type => 'Candor-Test-ASN',
    languages => ['en'], description => { en => 'Candor test fixture (fake data)' },
    alias_ipv6_to_ipv4 => 1, map_key_type_callback => sub { $asn_types{ $_[0] } },
    remove_reserved_networks => 0,
);
$asn->insert_network('89.160.20.112/28', { autonomous_system_number => 29518, autonomous_system_organization => 'Bredband2 AB' });
$asn->insert_network('2600:7000::/24', { autonomous_system_number => 6939, autonomous_system_organization => 'Hurricane Electric, Inc.' });
$asn->insert_network('12.81.92.0/22', { autonomous_system_number => 7018 });
open $fh, '>:raw', "$dir/candor-asn-test.mmdb" or die $!;
$asn->write_tree($fh);
close $fh;
print "wrote $dir/candor-city-test.mmdb and $dir/candor-asn-test.mmdb\n";
