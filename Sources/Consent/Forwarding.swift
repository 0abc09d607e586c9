/// Whether an event may be forwarded to ad platforms and CRMs (the destinations). The one place
/// that decides it; the collector records the answer on the event's visit (every stored event
/// updates it, and events that refuse or object, stored or dropped, withdraw it), and conversions are
/// written to the delivery outbox, and later sent, only while their visit's answer is yes.
///
/// Forwarded only when all hold:
/// - the visitor **explicitly granted** marketing (`ConsentState.granted(_, marketing: true)`)
///   through a consent source the policy trusts, and the event is identified: an opt-out site's
///   "no objection" and a grant from an untrusted source are not consent to share; with Google
///   Consent Mode as the source, the pixel reports marketing only when both `ad_storage` and
///   `ad_user_data` are granted;
/// - the request carried neither DNT nor GPC, whether or not the policy honours them for
///   counting (forwarding is a sale or share of data in the sense GPC objects to);
/// - the site's policy is not `cnil-exempt` (audience measurement only, nothing leaves).
///
/// Each destination is also opt-in per site (a row in `destinations`, enabled).
public enum ForwardingGate {
    public static func allows(policy: Policy, state: ConsentState, source: ConsentSource?, decision: ConsentDecision,
                              signals: PrivacySignals) -> Bool {
        guard policyAllows(policy), !signals.doNotTrack, !signals.globalPrivacyControl else { return false }
        guard case .granted(_, marketing: true) = state, policy.consentSources.contains(source ?? .candor) else { return false }
        return decision.allowsMarketing
    }

    /// Whether a site under this policy may forward at all (checked again when a queued delivery
    /// is sent: a site moved to cnil-exempt stops what is queued).
    public static func policyAllows(_ policy: Policy) -> Bool { policy.mode != .cnilExempt }

    /// Whether an event dropped with this state and these signals withdraws forwarding from the
    /// visitor's open visit: a refusal, or an objection (DNT, GPC).
    public static func withdraws(state: ConsentState, signals: PrivacySignals) -> Bool {
        if signals.doNotTrack || signals.globalPrivacyControl { return true }
        switch state {
        case .denied: return true
        case .granted(_, let marketing): return !marketing
        case .unset: return false
        }
    }
}
