//! Mail domains an org may claim: the name's shape, the public mail providers nobody may claim
//! (their users are not one company), and the DNS TXT record that proves control.

/// The DNS name whose TXT record proves control of `domain`.
pub fn verification_name(domain: &str) -> String {
    format!("_roost-verification.{domain}")
}

/// The TXT record's value for a domain claim's `token`.
pub fn verification_value(token: &str) -> String {
    format!("roost-verification={token}")
}

/// Mail providers whose addresses belong to the public, not to one organization.
pub const PUBLIC_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "ymail.com",
    "rocketmail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.ru",
    "yandex.com",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "zoho.com",
    "fastmail.com",
    "hey.com",
    "tutanota.com",
    "tuta.io",
    "hushmail.com",
];

/// Whether `domain` (normalized) is a public mail provider.
pub fn is_public_mail_domain(domain: &str) -> bool {
    PUBLIC_MAIL_DOMAINS.contains(&domain)
}

/// A domain name as typed, lowercased and without a trailing dot, if it is a plausible registrable
/// name: at least two labels of a-z, 0-9 and inner hyphens, 1–63 characters each, 253 in all.
pub fn normalize(domain: &str) -> Option<String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (d.len() <= 253 && labels.len() >= 2 && labels.iter().all(label_ok)).then_some(d)
}

/// The domain of an email address (lowercased).
pub fn of_email(email: &str) -> Option<String> {
    email.rsplit_once('@').and_then(|(_, d)| normalize(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_public_providers() {
        assert_eq!(normalize(" Acme.Example. ").as_deref(), Some("acme.example"));
        assert_eq!(normalize("sub.acme-corp.co.uk").as_deref(), Some("sub.acme-corp.co.uk"));
        for bad in ["", "acme", "-acme.com", "acme-.com", "ac me.com", "acme..com", "acme.com/x", "ácme.com"] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
        assert!(normalize(&format!("{}.com", "a".repeat(64))).is_none());
        assert!(is_public_mail_domain("gmail.com") && !is_public_mail_domain("acme.example"));
        assert_eq!(of_email("Bob@Acme.Example").as_deref(), Some("acme.example"));
        assert_eq!(verification_name("acme.example"), "_roost-verification.acme.example");
        assert_eq!(verification_value("abc"), "roost-verification=abc");
    }
}
