/// The consent banner's built-in texts (consent.js asks for them with the page's language).
/// Equal weight: "accept all" and "reject all" are the same kind of button with texts of the
/// same length class in every language.
enum BannerStrings {
    static let keys = ["title", "text", "accept", "reject", "customize", "save", "necessary", "analytics", "marketing", "settings"]

    static let languages: [String: [String]] = [
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

    /// The language for a page's `lang` ("fr-BE" → fr), English when there is none built in.
    static func language(_ tag: String?) -> String {
        let primary = (tag ?? "").split(whereSeparator: { $0 == "-" || $0 == "_" }).first.map { $0.lowercased() } ?? ""
        return languages[primary] != nil ? primary : "en"
    }

    static func strings(_ language: String) -> [(String, String)] {
        Array(zip(keys, languages[language] ?? languages["en"]!))
    }
}
