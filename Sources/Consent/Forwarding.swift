/// Whether an event may be forwarded to ad platforms and CRMs (the destinations). The one place
/// that decides it; the collector records the answer on the event's visit, and only conversions
/// of a visit whose latest event was allowed are written to the delivery outbox.
///
/// Forwarded only when all hold:
/// - the event is identified with marketing consent (`ConsentDecision.identified(marketing: true)`);
///   with Google Consent Mode as the source, the pixel reports marketing only when both
///   `ad_storage` and `ad_user_data` are granted;
/// - the request carried neither DNT nor GPC, whether or not the policy honours them for
///   counting (forwarding is a sale or share of data in the sense GPC objects to);
/// - the site's policy is not `cnil-exempt` (audience measurement only, nothing leaves).
///
/// Each destination is also opt-in per site (a row in `destinations`, enabled).
public enum ForwardingGate {
    public static func allows(policy: Policy, decision: ConsentDecision, signals: PrivacySignals) -> Bool {
        guard policy.mode != .cnilExempt, !signals.doNotTrack, !signals.globalPrivacyControl else { return false }
        return decision.allowsMarketing
    }
}
