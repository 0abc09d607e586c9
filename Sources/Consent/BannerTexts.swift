import Foundation

/// The consent banner's texts: built in for six languages, overridable per site and language
/// (Settings), handed to consent.js with the page's language (`GET /api/consent/config`).
/// Equal weight: "accept all" and "reject all" are the same kind of button in every language.
public enum BannerTexts {
    public static let keys = ["title", "text", "accept", "reject", "customize", "save", "necessary", "analytics", "marketing", "settings"]
    /// Longest text accepted per key: the explanation, or a title or button label.
    public static func maximumLength(_ key: String) -> Int { key == "text" ? 600 : 80 }

    /// A site's overrides: language → key → text.
    public typealias Overrides = [String: [String: String]]

    public static let languages: [String: [String]] = [
        "en": ["Your privacy",
               "We count visits to improve this site. With your permission we also remember you across visits (analytics) and measure campaigns (marketing). You can change this at any time.",
               "Accept all", "Reject all", "Customize", "Save choices", "Necessary (always on)", "Analytics", "Marketing", "Privacy settings"],
        "fr": ["Votre vie privée",
               "Nous comptons les visites pour améliorer ce site. Avec votre accord, nous vous reconnaissons aussi d’une visite à l’autre (mesure d’audience) et mesurons nos campagnes (marketing). Vous pouvez changer d’avis à tout moment.",
               "Tout accepter", "Tout refuser", "Personnaliser", "Enregistrer mes choix", "Nécessaires (toujours actifs)", "Mesure d’audience", "Marketing", "Paramètres de confidentialité"],
        "de": ["Ihre Privatsphäre",
               "Wir zählen Besuche, um diese Website zu verbessern. Mit Ihrer Einwilligung erkennen wir Sie auch bei späteren Besuchen wieder (Analyse) und messen Kampagnen (Marketing). Sie können Ihre Wahl jederzeit ändern.",
               "Alle akzeptieren", "Alle ablehnen", "Anpassen", "Auswahl speichern", "Notwendig (immer aktiv)", "Analyse", "Marketing", "Datenschutzeinstellungen"],
        "es": ["Su privacidad",
               "Contamos las visitas para mejorar este sitio. Con su permiso, también le reconocemos entre visitas (analítica) y medimos campañas (marketing). Puede cambiar su elección en cualquier momento.",
               "Aceptar todo", "Rechazar todo", "Personalizar", "Guardar selección", "Necesarias (siempre activas)", "Analítica", "Marketing", "Configuración de privacidad"],
        "it": ["La tua privacy",
               "Contiamo le visite per migliorare questo sito. Con il tuo consenso ti riconosciamo anche tra una visita e l’altra (statistiche) e misuriamo le campagne (marketing). Puoi cambiare la tua scelta in qualsiasi momento.",
               "Accetta tutto", "Rifiuta tutto", "Personalizza", "Salva le scelte", "Necessari (sempre attivi)", "Statistiche", "Marketing", "Impostazioni privacy"],
        "nl": ["Uw privacy",
               "We tellen bezoeken om deze site te verbeteren. Met uw toestemming herkennen we u ook bij volgende bezoeken (analyse) en meten we campagnes (marketing). U kunt uw keuze altijd wijzigen.",
               "Alles accepteren", "Alles weigeren", "Aanpassen", "Keuzes opslaan", "Noodzakelijk (altijd aan)", "Analyse", "Marketing", "Privacy-instellingen"],
    ]

    public static var languageCodes: [String] { languages.keys.sorted() }

    /// The language for a page's `lang` ("fr-BE" → fr), English when there is none built in.
    public static func language(_ tag: String?) -> String {
        let primary = (tag ?? "").split(whereSeparator: { $0 == "-" || $0 == "_" }).first.map { $0.lowercased() } ?? ""
        return languages[primary] != nil ? primary : "en"
    }

    /// The built-in text of a key in a language.
    public static func builtIn(_ key: String, _ language: String) -> String {
        let texts = languages[language] ?? languages["en"]!
        return keys.firstIndex(of: key).map { texts[$0] } ?? ""
    }

    /// The texts in a language: the site's override where it has one, else the built-in text.
    public static func texts(_ language: String, overrides: Overrides = [:]) -> [(String, String)] {
        keys.map { key in (key, overrides[language]?[key] ?? builtIn(key, language)) }
    }

    /// A site's overrides for one language from a form: empty fields fall back to the built-in
    /// text; texts are trimmed, bounded, and free of control characters (newlines excepted in
    /// the explanation). Returns the refusal, or the overrides with that language replaced.
    public static func replacing(_ language: String, with fields: [String: String], in overrides: Overrides) -> Result<Overrides, BannerTextError> {
        guard languages[language] != nil else { return .failure(.init("choose one of \(languageCodes.joined(separator: ", "))")) }
        var own: [String: String] = [:]
        for key in keys {
            // Browsers send a textarea's line breaks as CRLF.
            let text = (fields[key] ?? "").replacingOccurrences(of: "\r\n", with: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty, text != builtIn(key, language) else { continue }
            guard text.count <= maximumLength(key) else {
                return .failure(.init("the \(key) text is longer than \(maximumLength(key)) characters"))
            }
            guard !text.unicodeScalars.contains(where: { ($0.value < 0x20 && !(key == "text" && $0 == "\n")) || $0.value == 0x7F }) else {
                return .failure(.init("the \(key) text holds control characters"))
            }
            own[key] = text
        }
        var out = overrides
        out[language] = own.isEmpty ? nil : own
        return .success(out)
    }
}

public struct BannerTextError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
